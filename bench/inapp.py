#!/usr/bin/env python3
"""The app's share of a request inside the worker and the server's, rsgi against bjoern.

Wall-clock figures need a quiet machine; instruction counts do not. By
default each server runs under ``valgrind --tool=callgrind`` with one worker
and answers wrk's request on one kept-alive connection on 127.0.0.1. Each
server is run twice, serving N and then 2N requests after the same warm-up,
and the per-request figures are the difference of the two runs' counts over
N, so start-up and shutdown cancel out (``callgrind_control`` cannot reach a
forked worker). The app is ``bench/apps/inapp_probe.py``'s wrapper, whose
one C function (``partial_call``) holds the whole app call, so its inclusive
count is the app's share (framework code, environ reads, the server's
``start_response``) and the rest is the server's.

    python3 bench/inapp.py --python VENV/bin/python --apps flask --requests 1000

VENV needs rsgi and the peers named in ``--servers`` (bjoern; Flask, Django).
``--cache-sim`` adds callgrind's simulated caches and branch predictor
(several times slower; ``--ll`` sets the simulated last level).
``--wallclock`` runs the servers natively instead and times each app call
from inside (``--twice``: two back-to-back calls per request, to tell the
state the server leaves behind from the app's own surroundings), with the
worker's context switches per thread and page faults; ``--pin`` puts the
server on core 0 and the client on core 1; ``--connections 64`` loads the
server with ``wrk -t1 -c64`` for ``--seconds`` instead of one connection
(the app calls as they run under load, back to back, with the mean beside
the median: the tail is where a loaded worker's time goes). ``--env NAME=VALUE`` sets a
variable for every server (e.g. ``MALLOC_ARENA_MAX=1``); a server spelt
``rsgi+NAME=VALUE`` sets it for that one only, ``rsgi+moved`` first makes
one 30 ms call so that rsgi's standby thread takes the loop (and the app)
over, and ``rsgi-base`` runs the rsgi of ``--baseline``'s venv, so one run
compares two builds side by side. Every wait is bounded; each server is
stopped by its PID. Method and figures: bench/PROFILE.md, "In-app slowdown".
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import stat_fields
from load import run_wrk
from servers import APPS

BENCH = Path(__file__).resolve().parent
APPS_DIR = BENCH / "apps"
HOST = "127.0.0.1"
START_TIMEOUT = 600.0  # seconds: importing Django under callgrind is slow
REQUEST_TIMEOUT = 30.0  # seconds per request under callgrind

# Functions whose inclusive counts the report shows, by the symbol callgrind
# names them with. The app call is `partial_call` when the server calls the
# app with an argument tuple or through `tp_call`, `partial_vectorcall` when
# through vectorcall; only one of them is on the path.
APP_CALLS = ("partial_call", "partial_vectorcall")
WATCH = {
    "take_gil": "take_gil",
    "drop_gil": "drop_gil",
    "PyEval_RestoreThread": "PyEval_RestoreThread",
    "PyEval_SaveThread": "PyEval_SaveThread",
    "PyGILState_Ensure": "PyGILState_Ensure",
    "malloc": "malloc",
    "free": "free",
    "_PyObject_Malloc": "_PyObject_Malloc",
    "dict lookups": "unicodekeys_lookup_unicode",
    "generic dict lookups": "dictkeys_generic_lookup",
    "PyDict_Copy": "PyDict_Copy",
}


# Functions whose calls are counted (the GIL's hand-overs, the allocators).
COUNTED = ("take_gil", "drop_gil", "PyEval_SaveThread", "PyEval_RestoreThread", "malloc", "free",
           "_PyObject_Malloc", "syscall", "futex_wake", "__lll_lock_wake_private")


def server_argv(name, args, target, port):
    base = name.split("+", 1)[0]
    python = args.python
    if base == "rsgi-base":
        if not args.baseline:
            raise SystemExit("rsgi-base needs --baseline")
        python, base = args.baseline, "rsgi"
    if base == "rsgi":
        rsgi = Path(python).parent / "rsgi"
        threads = "2" if "threads2" in name.split("+")[1:] else "1"
        return [python, str(rsgi), target, "-w", "1", "--threads", threads, "-b", f"{HOST}:{port}",
                "--timeout", "600", "--graceful-timeout", "5"]
    if base == "bjoern":
        return [python, str(BENCH / "serve_bjoern.py"), target, HOST, str(port)]
    raise SystemExit(f"unknown server {name!r} (rsgi, rsgi-base, bjoern, with +NAME=VALUE or +threads2)")


def server_env(name, common):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(APPS_DIR)
    env.update(common)
    for part in name.split("+")[1:]:
        if "=" in part:
            k, _, v = part.partition("=")
            env[k] = v
    return env


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


class Client:
    """One kept-alive connection sending wrk's request, one at a time."""

    def __init__(self, port):
        self.port = port
        self.sock = None
        self.request = f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()

    def connect(self, deadline, proc):
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with status {proc.returncode} (see its log)")
            try:
                self.sock = socket.create_connection((HOST, self.port), timeout=REQUEST_TIMEOUT)
                self.get()
                return
            except OSError:
                if self.sock:
                    self.sock.close()
                    self.sock = None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def reconnect(self):
        self.sock.close()
        self.sock = socket.create_connection((HOST, self.port), timeout=REQUEST_TIMEOUT)

    def fetch_stats(self):
        """The timed wrapper's samples so far (ns), which it then forgets."""
        return json.loads(self.get("/__inapp__"))

    def get(self, path=None):
        if path:
            self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n\r\n".encode())
        else:
            self.sock.sendall(self.request)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the end of the response head")
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        length = int(m.group(1)) if m else 0
        while len(body) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed in the body")
            body += chunk
        if status != 200:
            raise RuntimeError(f"status {status}")
        return body

    def close(self):
        if self.sock:
            self.sock.close()


def start(name, args, out_dir, common_env, target, valgrind):
    """Start `name` serving `target`; returns (process, client connected, worker pid, log)."""
    port = free_port()
    stem = re.sub(r"[^A-Za-z0-9_.=-]", "_", name) + f"-{args.app}"
    argv = server_argv(name, args, target, port)
    if args.pin:
        # As bench/run.py: the server on core 0, the client (this process) on core 1.
        argv = ["taskset", "-c", "0"] + argv
        os.sched_setaffinity(0, {1})
    env = server_env(name, common_env)
    if valgrind:
        # Valgrind's options go in VALGRIND_OPTS, not on its command line:
        # rsgi writes its process title over the process's argument area,
        # which under valgrind is valgrind's own, and a forked worker reads
        # its output file name from there when it dumps.
        # (The tool itself must be named on the command line.)
        vg = [f"--callgrind-out-file={out_dir}/{stem}.%p"]
        if args.cache_sim:
            vg += ["--cache-sim=yes", "--branch-sim=yes"]
            if args.ll:
                # callgrind simulates two levels; this sets the last one
                # (e.g. to the core's L2 instead of the shared L3).
                vg += [f"--LL={args.ll}"]
        env["VALGRIND_OPTS"] = " ".join(vg)
        argv = ["valgrind", "--tool=callgrind"] + argv
    log = open(out_dir / f"{stem}.log", "w")
    proc = subprocess.Popen(argv, cwd=APPS_DIR, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    client = Client(port)
    try:
        client.connect(time.monotonic() + (START_TIMEOUT if valgrind else 30.0), proc)
        # The process that runs the app: rsgi's worker, bjoern itself.
        worker = proc.pid
        if name.startswith("rsgi"):
            kids = children(proc.pid)
            if len(kids) != 1:
                raise RuntimeError(f"expected one worker, found {kids}")
            worker = kids[0]
    except BaseException:
        client.close()
        stop(proc)
        log.close()
        raise
    return proc, client, worker, log, stem


def measure(name, args, out_dir, common_env, count):
    """Callgrind's counts for the worker's whole life, having served `count` requests after the
    warm-up: (dump file, seconds the requests took)."""
    proc, client, worker, log, stem = start(name, args, out_dir, common_env, f"inapp_probe:{args.app}", True)
    try:
        for _ in range(args.warmup):
            client.get()
        t0 = time.monotonic()
        for _ in range(count):
            client.get()
        elapsed = time.monotonic() - t0
    finally:
        client.close()
        stop(proc)
        log.close()
    dump = out_dir / f"{stem}.{worker}"
    if not dump.exists():
        raise RuntimeError(f"callgrind wrote no {dump}")
    final = dump.with_name(f"{stem}-{count}.{worker}")
    dump.rename(final)
    return final, elapsed


def proc_counts(pid):
    """(user CPU seconds, system CPU seconds, minor page faults) of one process so far."""
    fields = stat_fields(pid)
    # After the name: state(0) ppid(1) ... minflt(7) ... utime(11) stime(12)
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick, int(fields[7])


def wrk_load(args, port, seconds):
    """`wrk -t1 -cN` on the server for `seconds` (on core 1 with --pin)."""
    return run_wrk(port, APPS[args.app], seconds, args.connections, core=1 if args.pin else None)


def thread_switches(pid):
    """{thread name: voluntary + involuntary context switches so far} of one process."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        name = status["Name"].strip() if tid != str(pid) else "main"
        n = int(status["voluntary_ctxt_switches"]) + int(status["nonvoluntary_ctxt_switches"])
        out[name] = out.get(name, 0) + n
    return out


def wallclock(name, args, out_dir, common_env):
    """Native run: the app call's own times (ns) and the worker's CPU per request (µs)."""
    kind = "twice" if args.twice else "timed"
    proc, client, worker, log, _ = start(name, args, out_dir, common_env, f"inapp_probe:{args.app}_{kind}", False)
    try:
        for _ in range(args.warmup):
            client.get()
        if "moved" in name.split("+")[1:]:
            # One call past rsgi's 10 ms: the standby takes the loop over.
            client.get("/__inapp_slow__")
            for _ in range(args.warmup):
                client.get()
        if args.connections > 1:
            wrk_load(args, client.port, 2)
            client.reconnect()
        client.fetch_stats()
        user0, sys0, flt0 = proc_counts(worker)
        sw0 = thread_switches(worker)
        t0 = time.monotonic()
        if args.connections > 1:
            wrk_load(args, client.port, args.seconds)
        else:
            for _ in range(args.requests):
                client.get()
        elapsed = time.monotonic() - t0
        user1, sys1, flt1 = proc_counts(worker)
        sw1 = thread_switches(worker)
        if args.connections > 1:
            client.reconnect()  # its connection idled past the keep-alive time
        stats = client.fetch_stats()
        n = max(1, len(stats["ns"]))
        stats["switches"] = {t: round((sw1[t] - sw0.get(t, 0)) / n, 3) for t in sw1}
        stats["rps"] = n / elapsed
        stats["user"] = (user1 - user0) * 1e6 / n
        stats["sys"] = (sys1 - sys0) * 1e6 / n
        return stats, stats["user"] + stats["sys"], (flt1 - flt0) / n
    finally:
        client.close()
        stop(proc)
        log.close()


def stop(proc):
    try:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)


def annotate(dump):
    """{function symbol: (events dict)} inclusive, and the totals, from callgrind_annotate."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(dump)],
                         check=True, capture_output=True, text=True, timeout=300).stdout
    events = None
    totals = None
    funcs = {}
    num = r"[\d,]+"
    for line in out.splitlines():
        if line.startswith("Events shown:"):
            events = line.split(":", 1)[1].split()
            continue
        if events is None:
            continue
        m = re.match(rf"^\s*((?:{num}(?:\s+\([^)]*\))?\s+)+)(.*)$", line)
        if not m:
            continue
        values = [int(v.replace(",", "")) for v in re.findall(rf"({num})(?:\s+\([^)]*\))?", m.group(1))]
        label = m.group(2).strip()
        if len(values) != len(events):
            continue
        row = dict(zip(events, values))
        if label.startswith("PROGRAM TOTALS"):
            totals = row
            continue
        fn = label.split(":", 1)[1] if ":" in label else label
        fn = fn.split(" [", 1)[0].strip()
        if fn not in funcs:
            funcs[fn] = row
    return events, totals, funcs


def report_callgrind(args, servers, out_dir, common_env):
    for tool in ("valgrind", "callgrind_annotate"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found (apt-get install valgrind)")
    n = args.requests
    rows = []
    for _ in range(args.rounds):
        for name in servers:
            # callgrind_control cannot reach a forked worker, so the worker's
            # whole life is counted twice, with n and 2n requests: the
            # difference is n requests, without start-up and shutdown.
            runs = []
            calls = []
            for count in (n, 2 * n):
                dump, elapsed = measure(name, args, out_dir, common_env, count)
                runs.append(annotate(dump))
                calls.append(call_counts(dump, COUNTED))
                print(f"[{args.app}] {name}: {dump.name}, {count} requests in {elapsed:.1f} s under callgrind",
                      flush=True)
            (events, t1, f1), (_, t2, f2) = runs
            totals = {ev: t2[ev] - t1[ev] for ev in events}
            funcs = {fn: {ev: row[ev] - f1.get(fn, {}).get(ev, 0) for ev in events} for fn, row in f2.items()}
            counted = {fn: calls[1][fn] - calls[0][fn] for fn in COUNTED}
            rows.append((name, events, totals, funcs, counted))
    print(f"\n{args.app}: per request (the difference of {2 * n} and {n} requests, after {args.warmup} of warm-up)")
    for name, events, totals, funcs, counted in rows:
        app_call = max((funcs.get(sym, {}) for sym in APP_CALLS), key=lambda r: r.get("Ir", 0))
        total_ir = totals["Ir"]
        parts = [f"total Ir {total_ir / n:,.0f}", f"app call {app_call.get('Ir', 0) / n:,.0f}",
                 f"server {(total_ir - app_call.get('Ir', 0)) / n:,.0f}"]
        for ev in events[1:]:
            parts.append(f"{ev} {totals[ev] / n:,.1f} (app {app_call.get(ev, 0) / n:,.1f})")
        print(f"  {name}: " + ", ".join(parts))
        watched = [f"{label} {funcs[sym]['Ir'] / n:,.0f}" for label, sym in WATCH.items() if sym in funcs]
        print("    inclusive Ir/request: " + ", ".join(watched))
        print("    calls/request: " + ", ".join(f"{fn} {c / n:.2f}" for fn, c in counted.items()))


def report_wallclock(args, servers, out_dir, common_env):
    results = {name: [] for name in servers}
    warm = {name: [] for name in servers}
    for r in range(args.rounds):
        order = servers[r % len(servers):] + servers[:r % len(servers)]
        for name in order:
            stats, cpu, faults = wallclock(name, args, out_dir, common_env)
            samples, threads = stats["ns"], stats["threads"]
            results[name].append((samples, cpu, stats["rps"]))
            if stats["warm"]:
                warm[name].extend(stats["warm"])
            q = statistics.quantiles(samples, n=10)
            print(f"[{args.app}] round {r + 1} {name}: app call min {min(samples) / 1e3:.1f} µs, "
                  f"p10 {q[0] / 1e3:.1f}, median {statistics.median(samples) / 1e3:.1f}, "
                  f"p90 {q[-1] / 1e3:.1f}, mean {statistics.fmean(samples) / 1e3:.1f}; "
                  f"worker CPU {cpu:.1f} µs/request (user {stats['user']:.1f}, system {stats['sys']:.1f}), "
                  f"{faults:.2f} page faults/request, "
                  f"{stats['rps']:,.0f} requests/s on the connection; "
                  f"calls by thread {threads}; context switches/request by thread {stats['switches']}",
                  flush=True)
    print(f"\n{args.app}: app call µs (all rounds: min / p10 / median / p90 / mean), worker CPU µs/request and "
          "requests/s per round")
    for name, runs in results.items():
        allv = [v for samples, _, _ in runs for v in samples]
        q = statistics.quantiles(allv, n=10)
        cpus = ", ".join(f"{cpu:.1f}" for _, cpu, _ in runs)
        rates = ", ".join(f"{rps:,.0f}" for _, _, rps in runs)
        print(f"  {name}: {min(allv) / 1e3:.1f} / {q[0] / 1e3:.1f} / {statistics.median(allv) / 1e3:.1f} / "
              f"{q[-1] / 1e3:.1f} / {statistics.fmean(allv) / 1e3:.1f}; "
              f"CPU {cpus}; requests/s {rates}")
        if warm[name]:
            w = warm[name]
            q = statistics.quantiles(w, n=10)
            print(f"  {name}, the call right after: {min(w) / 1e3:.1f} / {q[0] / 1e3:.1f} / {statistics.median(w) / 1e3:.1f}")


def call_counts(dump, names):
    """How many times each function in `names` was called, from the dump's `calls=` lines."""
    ids = {}
    counts = dict.fromkeys(names, 0)
    callee = None
    with open(dump) as f:
        for line in f:
            if line.startswith("cfn="):
                m = re.match(r"cfn=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
                if m:
                    if m.group(2):
                        ids[m.group(1)] = m.group(2)
                    callee = ids.get(m.group(1))
                continue
            if line.startswith("fn="):
                m = re.match(r"fn=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
                if m and m.group(2):
                    ids[m.group(1)] = m.group(2)
                continue
            if line.startswith("calls=") and callee in counts:
                counts[callee] += int(line.split()[0][len("calls="):])
    return counts


def main(argv=None):
    p = argparse.ArgumentParser(prog="python3 bench/inapp.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--python", required=True, help="the venv's python (rsgi, bjoern, Flask/Django in it)")
    p.add_argument("--baseline", help="another venv's python, whose rsgi the server rsgi-base runs (A/B of two builds)")
    p.add_argument("--apps", default="flask", help="flask, django or both (comma-separated)")
    p.add_argument("--servers", default="rsgi,bjoern",
                   help="rsgi, rsgi-base, bjoern; +NAME=VALUE sets a variable for one server, rsgi+threads2 runs two "
                        "app threads, rsgi+moved makes one 30 ms call first (the standby takes the loop over)")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--cache-sim", action="store_true", help="simulate caches and branches too (slower)")
    p.add_argument("--ll", help="with --cache-sim: the simulated last-level cache as SIZE,ASSOC,LINE "
                                "(e.g. 1048576,16,64 for a 1 MiB L2; default: the machine's last level)")
    p.add_argument("--env", action="append", default=[], help="NAME=VALUE for every server")
    p.add_argument("--out", help="directory for the dumps and server logs (default: a new temporary one)")
    p.add_argument("--wallclock", action="store_true",
                   help="no callgrind: time each app call natively (needs a quiet machine to mean much)")
    p.add_argument("--rounds", type=int, default=1, help="interleaved rounds over the servers")
    p.add_argument("--pin", action="store_true", help="server on core 0, client on core 1 (as bench/run.py)")
    p.add_argument("--connections", type=int, default=1,
                   help="with --wallclock: load with wrk -t1 -cN for --seconds instead of one connection")
    p.add_argument("--seconds", type=int, default=8, help="with --connections: seconds of measured load")
    p.add_argument("--twice", action="store_true",
                   help="with --wallclock: time two back-to-back calls per request (apps' *_twice)")
    args = p.parse_args(argv)
    out_dir = Path(args.out or tempfile.mkdtemp(prefix="rsgi-inapp-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"dumps and logs in {out_dir}", flush=True)
    common_env = dict(kv.split("=", 1) for kv in args.env)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for app in args.apps.split(","):
        args.app = app.strip()
        if args.wallclock:
            report_wallclock(args, servers, out_dir, common_env)
        else:
            report_callgrind(args, servers, out_dir, common_env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
