#!/usr/bin/env python3
"""rsgi side by side with its peers: one command, `python3 bench/run.py`.

It installs the peers into bench/.venv (and wrk, libev-dev with apt-get when
missing), builds rsgi from this checkout into the same venv, then runs every
server with ONE worker pinned to one core while wrk, pinned to the other core,
loads it over 127.0.0.1. Runs are repeated and interleaved round-robin across
servers, and each figure is the median of its runs. During every run a probe
opens a brand-new connection every 0.5 s and times the full response, since
wrk alone cannot see a server that starves new clients. A slow-client scenario
then measures hello while 900 connections hold half-sent request heads.

Results: a table on stdout, raw JSON and a Markdown table in bench/results/,
and a chart (PNG) drawn with the venv's matplotlib. See bench/README.md.
"""

import argparse
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bootstrap  # noqa: E402
import report  # noqa: E402
from bootstrap import BENCH, REPO  # noqa: E402
from load import Probe, SlowClients, busy_pct, cpu_times, http_get, run_wrk, wait_for_quiet  # noqa: E402
from servers import APPS, APPS_DIR, CLK_TCK, SERVERS, RunningServer, become_subreaper  # noqa: E402

RESULTS = BENCH / "results"
LOGS = RESULTS / "logs"
NOFILE_WANTED = 65536  # 900 slow clients + 64 wrk connections + the probe, with room
QUIET_WAIT_PER_RUN = 60.0  # seconds a run may wait for a busy machine to calm down
QUIET_WAIT_BUDGET = 900.0  # seconds of such waiting in a whole benchmark, at most


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python3 bench/run.py",
        description="Benchmark rsgi against gunicorn, granian, bjoern, uWSGI and waitress (one worker each).",
    )
    p.add_argument("--quick", action="store_true",
                   help="CI smoke: 1 run x 3 s per pair, 1 s warm-up, short slow-client phase "
                        "(writes results/quick.* unless --out is given)")
    p.add_argument("--servers", default=",".join(n for n, s in SERVERS.items() if s.default),
                   help=f"comma-separated, from: {','.join(SERVERS)} "
                        "(default: all but uwsgi-http11)")
    p.add_argument("--apps", default=",".join(APPS),
                   help=f"comma-separated, from: {','.join(APPS)} (default: all)")
    p.add_argument("--duration", type=float, help="seconds of load per measured run (default 10)")
    p.add_argument("--warmup", type=float, help="seconds of load before each measured run (default 2)")
    p.add_argument("--runs", type=int, help="interleaved runs per server and app (default 3)")
    p.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    p.add_argument("--slow-clients", type=int, default=900,
                   help="connections holding half-sent heads in the slow-client scenario (default 900)")
    p.add_argument("--no-slow", action="store_true", help="skip the slow-client scenario")
    p.add_argument("--skip-install", action="store_true",
                   help="use bench/.venv as it is: no apt-get, no pip, no rebuild of rsgi")
    p.add_argument("--out", help="results file stem inside bench/results (default: latest, or quick)")
    args = p.parse_args(argv)
    if args.quick:
        args.runs = args.runs or 1
        args.duration = args.duration or 3
        args.warmup = args.warmup if args.warmup is not None else 1
    args.runs = args.runs or 3
    args.duration = args.duration or 10
    args.warmup = args.warmup if args.warmup is not None else 2
    args.out = args.out or ("quick" if args.quick else "latest")
    for field, table in (("servers", SERVERS), ("apps", APPS)):
        names = [n.strip() for n in getattr(args, field).split(",") if n.strip()]
        unknown = [n for n in names if n not in table]
        if unknown:
            p.error(f"unknown {field}: {', '.join(unknown)} (known: {', '.join(table)})")
        setattr(args, field, names)
    return args


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, NOFILE_WANTED)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def machine_info():
    model = None
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "memory": mem, "os": _os_name()}


def _os_name():
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def rsgi_checkout():
    def git(*a):
        r = subprocess.run(["git", "-C", str(REPO), *a], capture_output=True, text=True, timeout=30)
        return r.stdout.strip() if r.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--", "src", "python", "Cargo.toml", "Cargo.lock", "pyproject.toml")
    return {"commit": commit, "uncommitted_changes_in_build_inputs": bool(dirty)}


def scrub(text):
    """Drop this machine's absolute paths from what gets written (results are committed)."""
    text = text.replace(f"{REPO}{os.sep}", "").replace(str(REPO), ".")
    home = os.path.expanduser("~")
    return text.replace(home, "~") if home not in ("", "/") else text


def server_env():
    env = {k: v for k, v in os.environ.items()
           if k not in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "RSGI_CMD_ARGS", "PYTHONPATH")}
    env["PYTHONPATH"] = str(APPS_DIR)
    env["PATH"] = f"{bootstrap.VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


class Bench:
    """The measurement loop: which servers and apps, on which cores, with what settings."""

    def __init__(self, args, servers, apps, cores):
        self.args = args
        self.servers = servers
        self.apps = apps
        self.server_core, self.client_core = cores
        self.env = server_env()
        self.runs = []
        self.slow = []
        self.quiet_budget = QUIET_WAIT_BUDGET

    def _start(self, server, app):
        return RunningServer(SERVERS[server], app, LOGS / f"{server}-{app.name}.log",
                             core=self.server_core, env=self.env)

    def _quiet(self, rec):
        """Wait (bounded) for the machine to be idle before starting a server."""
        cores = [c for c in (self.server_core, self.client_core) if c is not None] or [0]
        max_wait = min(QUIET_WAIT_PER_RUN, max(1.0, self.quiet_budget))
        rec["quiet_wait_s"], rec["busy_before_pct"] = wait_for_quiet(cores, max_wait=max_wait)
        self.quiet_budget -= rec["quiet_wait_s"]
        rec["loadavg"] = round(os.getloadavg()[0], 2)

    def _load(self, srv, app, duration):
        """One wrk run with the new-client probe beside it; returns (wrk figures, probe, CPU ticks).

        The wrk figures also get `foreign_cpu_pct`: how busy the server's core
        was with anything but the server (someone else's work on a shared machine).
        """
        probe = Probe(srv.port)
        sys0 = cpu_times()
        t0 = srv.cpu_split()
        probe.start()
        try:
            w = run_wrk(srv.port, app, duration, self.args.connections, core=self.client_core)
        finally:
            t1 = srv.cpu_split()
            sys1 = cpu_times()
            pr = probe.finish()
        core = self.server_core if self.server_core is not None else 0
        total = sys1.get(core, (0, 0))[1] - sys0.get(core, (0, 0))[1]
        user, system = t1[0] - t0[0], t1[1] - t0[1]
        server_pct = 100.0 * (user + system) / total if total else 0.0
        w["server_core_busy_pct"] = round(busy_pct(sys0, sys1, core), 1)
        w["foreign_cpu_pct"] = round(max(0.0, w["server_core_busy_pct"] - server_pct), 1)
        return w, pr, (user, system)

    def one(self, server, app_name, run):
        """Measure one (server, app) pair once, on a freshly started server."""
        app = APPS[app_name]
        rec = {"server": server, "app": app_name, "run": run, "ok": False}
        self._quiet(rec)
        try:
            with self._start(server, app) as srv:
                rec["argv"] = srv.argv
                srv.wait_ready(http_get)
                if self.args.warmup > 0:
                    run_wrk(srv.port, app, self.args.warmup, self.args.connections, core=self.client_core)
                w, pr, ticks = self._load(srv, app, self.args.duration)
                worker, master = srv.memory()
                rec.update(w)
                rec["probe"] = pr
                per_req = 1e6 / CLK_TCK / w["requests"] if w["requests"] else None
                rec["cpu_s"] = sum(ticks) / CLK_TCK
                rec["cpu_us_per_req"] = sum(ticks) * per_req if per_req else None
                rec["user_us_per_req"] = ticks[0] * per_req if per_req else None
                rec["system_us_per_req"] = ticks[1] * per_req if per_req else None
                rec["rss_worker_kib"], rec["rss_master_kib"] = worker, master
                rec["processes"] = len(srv.tree())
                rec["alive_after"] = srv.proc.poll() is None
                rec["ok"] = True
        except Exception as e:  # one failed run is a result, never the end of the benchmark
            rec["error"] = f"{type(e).__name__}: {e}"[:500]
        self.runs.append(rec)
        log(report.run_line(rec))
        return rec

    def slow_one(self, server, run):
        """Hello undisturbed, then with N connections holding half-sent heads."""
        app = APPS["hello"]
        rec = {"server": server, "run": run, "ok": False, "slow_clients": self.args.slow_clients}
        self._quiet(rec)
        try:
            with self._start(server, app) as srv:
                srv.wait_ready(http_get)
                if self.args.warmup > 0:
                    run_wrk(srv.port, app, self.args.warmup, self.args.connections, core=self.client_core)
                base, base_probe, _ = self._load(srv, app, self.args.duration)
                rec["baseline_rps"] = base["rps"]
                rec["baseline_probe"] = base_probe
                slow = SlowClients(srv.port, self.args.slow_clients)
                try:
                    rec["slow_connected"] = slow.connected
                    time.sleep(1.0)
                    w, pr, _ = self._load(srv, app, self.args.duration)
                    rec["slow_still_open"] = slow.still_open()
                    worker, master = srv.memory()
                finally:
                    slow.close()
                rec.update({"rps": w["rps"], "p99_ms": w["p99_ms"], "errors": w["errors"],
                            "foreign_cpu_pct": max(w["foreign_cpu_pct"], base["foreign_cpu_pct"]),
                            "error_detail": w["error_detail"], "probe": pr,
                            "rss_worker_kib": worker, "rss_master_kib": master})
                rec["pct_of_baseline"] = 100.0 * w["rps"] / base["rps"] if base["rps"] else None
                rec["ok"] = True
        except Exception as e:  # one failed run is a result, never the end of the benchmark
            rec["error"] = f"{type(e).__name__}: {e}"[:500]
        self.slow.append(rec)
        log(report.slow_line(rec))
        return rec

    def run_all(self):
        for r in range(self.args.runs):
            # Rotate the server order each round so no server always goes first.
            order = self.servers[r % len(self.servers):] + self.servers[:r % len(self.servers)]
            log(f"--- round {r + 1}/{self.args.runs}: {', '.join(order)}")
            for app in self.apps:
                for server in order:
                    self.one(server, app, r)
            if not self.args.no_slow:
                for server in order:
                    self.slow_one(server, r)


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _terminate)
    started = time.time()
    command = "python3 bench/run.py" + "".join(f" {a}" for a in (sys.argv[1:] if argv is None else argv))

    install = bootstrap.setup(skip_install=args.skip_install)
    versions = bootstrap.versions()
    if not versions.get("wrk"):
        raise SystemExit("wrk is not installed and could not be installed: nothing can be measured")

    def unavailable(dist):
        if versions.get(dist) is None:
            err = (install.get(dist) or {}).get("error")
            return err or "not installed"
        return None

    skipped = {}
    servers = []
    for name in args.servers:
        why = unavailable(SERVERS[name].needs)
        if why:
            skipped[name] = why
        else:
            servers.append(name)
    apps = []
    for name in args.apps:
        why = APPS[name].needs and unavailable(APPS[name].needs)
        if why:
            skipped[f"app:{name}"] = why
        else:
            apps.append(name)
    for name, why in skipped.items():
        log(f"UNAVAILABLE {name}: {why.splitlines()[-1] if why else why}")

    nofile = raise_nofile()
    become_subreaper()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        cores = (cpus[0], cpus[1])
        os.sched_setaffinity(0, {cpus[1]})  # the harness and its probe share the client core
    else:
        cores = (None, None)
        log("only one CPU: server and client are NOT pinned apart; figures will be poor")

    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
        "command": command,
        "options": {k: getattr(args, k) for k in
                    ("runs", "duration", "warmup", "connections", "slow_clients", "no_slow", "quick")},
        "servers": {n: {"argv_template": SERVERS[n].note} for n in args.servers},
        "machine": machine_info(),
        "pinning": {"server_core": cores[0], "client_core": cores[1]},
        "nofile": nofile,
        "versions": versions,
        "install": install,
        "unavailable": skipped,
        "rsgi_checkout": rsgi_checkout(),
    }
    bench = Bench(args, servers, apps, cores)
    per_pair = args.warmup + args.duration + 2
    est = args.runs * (len(servers) * len(apps) * per_pair
                       + (0 if args.no_slow else len(servers) * (args.warmup + 2 * args.duration + 4)))
    log(f"{len(servers)} servers x {len(apps)} apps x {args.runs} runs; about {est / 60:.0f} min")
    interrupted = False
    try:
        bench.run_all()
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: writing the results gathered so far")
    meta["elapsed_s"] = round(time.time() - started)
    meta["interrupted"] = interrupted

    results = {"meta": meta, "runs": bench.runs, "slow": bench.slow}
    results["summary"] = report.summarize(bench.runs, servers, apps)
    results["slow_summary"] = report.summarize_slow(bench.slow, servers)
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS / f"{args.out}.json"
    json_path.write_text(scrub(json.dumps(results, indent=1, default=str)) + "\n")
    (RESULTS / f"{args.out}.md").write_text(scrub(report.markdown(results)))
    print()
    print(report.text_tables(results))
    png = RESULTS / f"{args.out}.png"
    r = subprocess.run([str(bootstrap.venv_python()), str(BENCH / "chart.py"), str(json_path), str(png)],
                       capture_output=True, text=True, timeout=300)
    if r.returncode == 0:
        log(f"chart: {png.relative_to(REPO)}")
    else:
        log(f"chart not drawn: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
    log(f"results: {json_path.relative_to(REPO)}, {(RESULTS / (args.out + '.md')).relative_to(REPO)}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
