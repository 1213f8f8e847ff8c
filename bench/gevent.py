"""The gevent scenarios: rsgi -k gevent against gunicorn -k gevent and
granian, one worker each, on 127.0.0.1.

- ``sleep``: ``sleepy:app`` (each request waits 50 ms) under wrk -c200. The
  ideal is 200 / 0.05 s = 4,000 requests/s; the figures are the share of it
  reached and the server's CPU time per request (its whole process tree).
- ``hello``: ``plain:hello`` under wrk -c64 (the server's own cost).
- ``flask``: ``flask_hello:app`` under wrk -c64, rsgi and gunicorn, both
  with the gevent worker.
- ``slow``: hello under wrk -c64, first undisturbed, then (same server) while
  900 connections (``--slow-clients``) hold half-sent request heads, rsgi
  and gunicorn with the gevent worker and ``--worker-connections 1000``:
  the share of the rate kept, and how many held connections were still
  open at the end.

    python3 bench/gevent.py                        # bench/.venv's servers
    python3 bench/gevent.py --bindir .venv/bin --duration 5 --servers rsgi-gevent,gunicorn-gevent

The server runs pinned to the first core and wrk to the second (unless
``--no-pin``). Bounded: every wrk run has -d (at most 30 s) and --timeout,
servers are stopped by PID, and nothing leaves the loopback address. A
shared or busy machine gives figures that are not final.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bootstrap import VENV  # noqa: E402
from load import SlowClients, http_get, run_wrk  # noqa: E402
from run import raise_nofile  # noqa: E402
from servers import App, RunningServer, Server, ServerError  # noqa: E402

MAX_DURATION = 30.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

APPS = {
    "sleep": App("sleep", "sleepy:app"),
    "hello": App("hello", "plain:hello"),
    "flask": App("flask", "flask_hello:app", needs="Flask"),
}

#: Scenario -> (app, wrk connections, ideal requests/s or None).
SCENARIOS = {
    "sleep": ("sleep", 200, 200 / 0.05),
    "hello": ("hello", 64, None),
    "flask": ("flask", 64, None),
    "slow": ("hello", 64, None),
}


def servers(bindir):
    def rsgi(app, port):
        return [bindir / "rsgi", app.target, "-w", "1", "-k", "gevent", "--worker-connections", "1000",
                "-b", f"127.0.0.1:{port}"]

    def gunicorn(app, port):
        return [bindir / "gunicorn", "-w", "1", "-k", "gevent", "--worker-connections", "1000",
                "-b", f"127.0.0.1:{port}", app.target]

    def granian(app, port):
        # Its thread pool, as large as the connections of the sleep case.
        return [bindir / "granian", "--interface", "wsgi", "--workers", "1", "--blocking-threads", "200",
                "--host", "127.0.0.1", "--port", str(port), app.target]

    return {
        "rsgi-gevent": Server("rsgi-gevent", "rsgi", rsgi, "-w 1 -k gevent"),
        "gunicorn-gevent": Server("gunicorn-gevent", "gunicorn", gunicorn, "-w 1 -k gevent"),
        "granian": Server("granian", "granian", granian, "--interface wsgi --workers 1 --blocking-threads 200"),
    }


def _measured(running, app, connections, duration, core):
    before = running.cpu_ticks()
    figures = run_wrk(running.port, app, duration, connections, core=core)
    figures["cpu_us_per_request"] = ((running.cpu_ticks() - before) / CLK_TCK * 1e6
                                     / max(1, figures["requests"]))
    return figures


def measure(server, app, connections, duration, logs, cores, slow_clients=0):
    """wrk on a fresh server after a warm-up; with `slow_clients`, a second
    run while that many connections hold half-sent heads, whose figures are
    returned with the first run's req/s as `baseline_rps`."""
    server_core, client_core = cores
    with RunningServer(server, app, Path(logs) / f"{server.name}-{app.name}.log", core=server_core) as running:
        running.wait_ready(http_get)
        run_wrk(running.port, app, min(2.0, duration), connections, core=client_core)  # warm-up
        figures = _measured(running, app, connections, duration, client_core)
        if not slow_clients:
            return figures
        slow = SlowClients(running.port, slow_clients)
        try:
            time.sleep(1.0)
            held = _measured(running, app, connections, duration, client_core)
            held["slow_connected"], held["slow_still_open"] = slow.connected, slow.still_open()
        finally:
            slow.close()
        held["baseline_rps"] = figures["rps"]
        return held


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bindir", type=Path, default=VENV / "bin", help="where rsgi, gunicorn and granian are")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run (at most 30)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--servers", default=None, help="comma-separated; default: every one there is")
    p.add_argument("--slow-clients", type=int, default=900, help="held connections in the slow scenario")
    p.add_argument("--no-pin", action="store_true",
                   help="leave server and wrk unpinned (default: server on the first core, wrk on the second)")
    args = p.parse_args()
    raise_nofile()  # the slow scenario's connections, and the servers inherit it
    cpus = sorted(os.sched_getaffinity(0))
    cores = (cpus[0], cpus[1]) if len(cpus) >= 2 and not args.no_pin else (None, None)
    if cores[1] is not None:
        os.sched_setaffinity(0, {cores[1]})  # the harness (and the slow clients) beside wrk
    duration = min(args.duration, MAX_DURATION)
    known = servers(args.bindir.resolve())
    names = args.servers.split(",") if args.servers else list(known)
    logs = tempfile.mkdtemp(prefix="rsgi-bench-gevent-")
    print(f"logs in {logs}; wrk -d{duration:g}s; figures from a shared machine are not final")
    print(f"{'scenario':8} {'server':16} {'req/s':>9} {'of ideal':>9} {'CPU µs/req':>11} {'p99 ms':>8} {'errors':>7}")
    for scenario in args.scenarios.split(","):
        app_name, connections, ideal = SCENARIOS[scenario]
        for name in names:
            server = known[name]
            if scenario in ("flask", "slow") and name == "granian":
                continue
            if not (args.bindir / server.needs).exists():
                print(f"{scenario:8} {name:16} {'(not installed)':>9}")
                continue
            try:
                f = measure(server, APPS[app_name], connections, duration, logs, cores,
                            args.slow_clients if scenario == "slow" else 0)
            except (ServerError, RuntimeError, OSError) as e:
                print(f"{scenario:8} {name:16} failed: {str(e)[:100]}")
                continue
            if scenario == "slow":
                kept = 100 * f["rps"] / f["baseline_rps"] if f["baseline_rps"] else 0.0
                print(f"{scenario:8} {name:16} {f['rps']:9.0f} {kept:8.1f}% of its {f['baseline_rps']:,.0f} "
                      f"undisturbed; {f['slow_still_open']}/{f['slow_connected']} held open; "
                      f"p99 {f['p99_ms']:.1f} ms, errors {f['errors']}", flush=True)
                time.sleep(0.5)
                continue
            share = f"{100 * f['rps'] / ideal:8.1f}%" if ideal else f"{'':>9}"
            print(f"{scenario:8} {name:16} {f['rps']:9.0f} {share} {f['cpu_us_per_request']:11.0f} "
                  f"{f['p99_ms']:8.1f} {f['errors']:7d}", flush=True)
            time.sleep(0.5)


if __name__ == "__main__":
    main()
