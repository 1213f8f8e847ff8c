"""ASGI over HTTP side by side, one worker each: rsgi's ASGI worker, granian
(--interface asgi), uvicorn (uvloop + httptools), gunicorn with
uvicorn-worker's UvicornWorker, and gunicorn's own `-k asgi`.

    python3 bench/asgi.py                                  # bench/.venv's servers
    python3 bench/asgi.py --python VENV/bin/python --scenarios hello,stream --duration 2 --runs 1

Scenarios (bench/apps/asgi_hello.py): `hello` (raw ASGI, 13 bytes),
`fastapi` (the same from FastAPI), `stream` (raw ASGI, 16 chunks of 64
bytes with more_body=True, sent chunked), `fastapi-stream` (the same
through StreamingResponse). For every scenario and server, in rounds whose
server order rotates: a freshly started server pinned to core 0, a warm-up,
then `wrk -t1 -cN` pinned to core 1 for the duration. Figures are medians
over the rounds: requests/s, p50/p99, the server tree's user and system CPU
per request (/proc), wrk's voluntary context switches per request (how often
the server's writes woke the client), and the worker's and master's RSS
after the run. Loopback only, every server stopped by its PID.
"""

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from asgi_servers import Harness, add_harness_args, cpu_per_unit, finish, markdown, medians  # noqa: E402
from load import http_get, run_wrk  # noqa: E402
from servers import App, ServerError  # noqa: E402

SCENARIOS = {
    "hello": App("hello", "asgi_hello:hello"),
    "fastapi": App("fastapi", "asgi_hello:fastapi_hello", needs="fastapi"),
    "stream": App("stream", "asgi_hello:stream"),
    "fastapi-stream": App("fastapi-stream", "asgi_hello:fastapi_stream", needs="fastapi"),
}

COLUMNS = [
    ("scenario", "scenario", None), ("server", "server", None), ("runs", "runs", None),
    ("req/s", "rps", ",.0f"), ("p50 ms", "p50_ms", ".2f"), ("p99 ms", "p99_ms", ".2f"),
    ("user µs/req", "user_us", ".1f"), ("system µs/req", "system_us", ".1f"),
    ("CPU µs/req", "cpu_us", ".1f"), ("client wake-ups/req", "client_vcsw_per_req", ".3f"),
    ("RSS worker KiB", "rss_worker_kib", ",.0f"), ("RSS master KiB", "rss_master_kib", ",.0f"),
    ("errors", "errors", "d"),
]


def measure(harness, server, app):
    """One run: a fresh server, warm-up, then the measured wrk run."""
    args = harness.args
    rec = {"scenario": app.name, "server": server.name, "ok": False}
    try:
        with harness.start(server, app) as srv:
            rec["argv"] = " ".join(Path(a).name if a.startswith("/") else a for a in srv.argv)
            srv.wait_ready(http_get)
            if args.warmup > 0:
                run_wrk(srv.port, app, args.warmup, args.connections, core=harness.client_core)
            before = srv.cpu_split()
            w = run_wrk(srv.port, app, args.duration, args.connections, core=harness.client_core)
            after = srv.cpu_split()
            rec.update({k: w[k] for k in ("requests", "rps", "p50_ms", "p99_ms", "errors",
                                          "error_detail", "client_vcsw_per_req")})
            rec.update(cpu_per_unit(before, after, w["requests"]))
            rec["rss_worker_kib"], rec["rss_master_kib"] = srv.memory()
            rec["ok"] = w["requests"] > 0
            if not rec["ok"]:
                rec["error"] = f"no request answered: {w['error_detail']}"
    except (ServerError, RuntimeError, OSError) as e:
        rec["error"] = f"{type(e).__name__}: {e}"[:300]
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_harness_args(ap, "rsgi,granian,uvicorn,gunicorn-uvicorn,gunicorn-asgi")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS),
                    help=f"comma-separated, from: {','.join(SCENARIOS)}")
    ap.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    args = ap.parse_args()
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenarios: {', '.join(unknown)}")
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed")
    harness = Harness(args)
    records = []
    print(f"wrk -t1 -c{args.connections} -d{args.duration:g}s, {args.runs} round(s), "
          f"server core {harness.server_core}, client core {harness.client_core}", flush=True)
    for r, order in harness.rounds():
        for name in scenarios:
            for server in order:
                rec = measure(harness, server, SCENARIOS[name])
                rec["run"] = r
                records.append(rec)
                if rec["ok"]:
                    print(f"  round {r + 1} {name:15} {server.name:18} {rec['rps']:10,.0f} req/s "
                          f"{rec['cpu_us']:7.1f} µs CPU/req  p99 {rec['p99_ms']:.2f} ms  "
                          f"errors {rec['errors']}", flush=True)
                else:
                    print(f"  round {r + 1} {name:15} {server.name:18} failed: {rec.get('error')}", flush=True)
    rows = medians(records, ("scenario", "server"),
                   [k for _, k, f in COLUMNS[3:] if k != "errors"], summed=("errors",))
    finish(harness, records, rows, markdown(rows, COLUMNS))


if __name__ == "__main__":
    main()
