"""The gevent scenarios: rsgi -k gevent against gunicorn -k gevent and
granian, one worker each, on 127.0.0.1.

- ``sleep``: ``sleepy:app`` (each request waits 50 ms) under wrk -c200. The
  ideal is 200 / 0.05 s = 4,000 requests/s; the figures are the share of it
  reached and the server's CPU time per request (its whole process tree).
- ``hello``: ``plain:hello`` under wrk -c64 (the server's own cost).
- ``flask``: ``flask_hello:app`` under wrk -c64, rsgi and gunicorn, both
  with the gevent worker.

    python3 bench/gevent.py                        # bench/.venv's servers
    python3 bench/gevent.py --bindir .venv/bin --duration 5 --servers rsgi-gevent,gunicorn-gevent

Bounded: every wrk run has -d (at most 30 s) and --timeout, servers are
stopped by PID, and nothing leaves the loopback address. A shared or busy
machine gives figures that are not final; bench/run.py's pinning is the
place for numbers to publish.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bootstrap import VENV  # noqa: E402
from load import http_get, run_wrk  # noqa: E402
from servers import App, RunningServer, Server, ServerError  # noqa: E402

MAX_DURATION = 30.0
CLK_TCK = __import__("os").sysconf("SC_CLK_TCK")

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


def measure(server, app, connections, duration, logs):
    with RunningServer(server, app, Path(logs) / f"{server.name}-{app.name}.log") as running:
        running.wait_ready(http_get)
        run_wrk(running.port, app, min(2.0, duration), connections)  # warm-up
        before = running.cpu_ticks()
        figures = run_wrk(running.port, app, duration, connections)
        figures["cpu_us_per_request"] = ((running.cpu_ticks() - before) / CLK_TCK * 1e6
                                         / max(1, figures["requests"]))
        return figures


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bindir", type=Path, default=VENV / "bin", help="where rsgi, gunicorn and granian are")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run (at most 30)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--servers", default=None, help="comma-separated; default: every one there is")
    args = p.parse_args()
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
            if scenario == "flask" and name == "granian":
                continue
            if not (args.bindir / server.needs).exists():
                print(f"{scenario:8} {name:16} {'(not installed)':>9}")
                continue
            try:
                f = measure(server, APPS[app_name], connections, duration, logs)
            except (ServerError, RuntimeError, OSError) as e:
                print(f"{scenario:8} {name:16} failed: {str(e)[:100]}")
                continue
            share = f"{100 * f['rps'] / ideal:8.1f}%" if ideal else f"{'':>9}"
            print(f"{scenario:8} {name:16} {f['rps']:9.0f} {share} {f['cpu_us_per_request']:11.0f} "
                  f"{f['p99_ms']:8.1f} {f['errors']:7d}", flush=True)
            time.sleep(0.5)


if __name__ == "__main__":
    main()
