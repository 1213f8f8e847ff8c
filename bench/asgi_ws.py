"""WebSocket side by side, one worker each, on the raw ASGI echo app
(bench/apps/asgi_ws_echo.py): rsgi, uvicorn (its default WebSocket
implementation, and `--ws websockets`), granian and gunicorn with
uvicorn-worker's UvicornWorker (gunicorn `-k asgi` when named).

    python3 bench/asgi_ws.py                                   # bench/.venv's servers
    python3 bench/asgi_ws.py --python VENV/bin/python --duration 2 --runs 1

Scenarios:

- ``echo``: bench/websocket_load.py, run as its own process pinned to the
  client core, keeps `--ws-connections` (64) upgraded connections each
  sending a 32-byte text message and waiting for its echo, back to back;
  round trips per second, p50/p99 of a round trip, the server tree's user
  and system CPU per round trip, the client's CPU as a share of its core
  (near 100 % would mean the client was the limit) and its wake-ups per
  round trip, and RSS.
- ``idle``: `--idle` (900) connections opened and upgraded one after the
  other, one message echoed on each, then the worker's and the master's
  RSS compared with before (after one warm connection): KiB per
  connection, and how many of them the server still held.

Servers start pinned to core 0 in rounds whose order rotates; figures are
medians over the rounds. Loopback only, every server stopped by its PID.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import websocket_load as wsl  # noqa: E402
from asgi_servers import Harness, add_harness_args, cpu_per_unit, finish, markdown, medians  # noqa: E402
from bootstrap import BENCH  # noqa: E402
from load import http_get  # noqa: E402
from servers import App, ServerError  # noqa: E402

ECHO = App("ws-echo", "asgi_ws_echo:app")
SCENARIOS = ("echo", "idle")

COLUMNS = [
    ("scenario", "scenario", None), ("server", "server", None), ("runs", "runs", None),
    ("round trips/s", "rtps", ",.0f"), ("p50 ms", "p50_ms", ".2f"), ("p99 ms", "p99_ms", ".2f"),
    ("user µs/rt", "user_us", ".1f"), ("system µs/rt", "system_us", ".1f"), ("CPU µs/rt", "cpu_us", ".1f"),
    ("client CPU %", "client_cpu_pct", ".0f"), ("client wake-ups/rt", "client_vcsw_per_rt", ".3f"),
    ("RSS worker KiB", "rss_worker_kib", ",.0f"), ("RSS master KiB", "rss_master_kib", ",.0f"),
    ("errors", "errors", "d"),
]
IDLE_COLUMNS = [
    ("scenario", "scenario", None), ("server", "server", None), ("runs", "runs", None),
    ("held", "held", ",.0f"), ("worker KiB before", "worker_before_kib", ",.0f"),
    ("worker KiB after", "worker_after_kib", ",.0f"), ("worker KiB/conn", "worker_kib_per_conn", ".1f"),
    ("master KiB/conn", "master_kib_per_conn", ".2f"), ("errors", "errors", "d"),
]


def run_client(port, connections, duration, core):
    """bench/websocket_load.py as a process of its own (pinned); its JSON result."""
    argv = [sys.executable, str(BENCH / "websocket_load.py"), "--port", str(port),
            "--connections", str(connections), "--duration", f"{duration:g}"]
    if core is not None:
        argv = ["taskset", "-c", str(core), *argv]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120)
    for line in r.stdout.splitlines():
        if line.startswith("WS_JSON "):
            return json.loads(line[len("WS_JSON "):])
    raise RuntimeError(f"client exited {r.returncode} without a result: {(r.stderr or r.stdout)[-300:]}")


def echo(harness, server):
    args = harness.args
    rec = {"scenario": "echo", "server": server.name, "ok": False}
    try:
        with harness.start(server, ECHO) as srv:
            srv.wait_ready(http_get)
            if args.warmup > 0:
                run_client(srv.port, args.ws_connections, args.warmup, harness.client_core)
            before = srv.cpu_split()
            c = run_client(srv.port, args.ws_connections, args.duration, harness.client_core)
            after = srv.cpu_split()
            rec.update(c)
            rec.update(cpu_per_unit(before, after, c["round_trips"]))
            rec["errors"] = c["upgrade_errors"] + c["closed_by_server"] + c["protocol_errors"]
            rec["rss_worker_kib"], rec["rss_master_kib"] = srv.memory()
            rec["ok"] = c["round_trips"] > 0
            if not rec["ok"]:
                rec["error"] = "no round trip"
    except (ServerError, RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        rec["error"] = f"{type(e).__name__}: {e}"[:300]
    return rec


def idle(harness, server):
    count = harness.args.idle
    rec = {"scenario": "idle", "server": server.name, "ok": False, "connections": count}
    socks = []
    try:
        with harness.start(server, ECHO) as srv:
            srv.wait_ready(http_get)
            warm, errors = wsl.open_upgraded(srv.port, 1)
            if not warm or wsl.echo_each(warm) != 1:
                raise RuntimeError(f"no WebSocket echo: {errors[:1]}")
            time.sleep(0.5)
            worker0, master0 = srv.memory()
            socks, errors = wsl.open_upgraded(srv.port, count)
            echoed = wsl.echo_each(socks)
            time.sleep(0.5)
            worker1, master1 = srv.memory()
            held = wsl.still_open(socks)
            wsl.close_all(warm)
            rec.update({
                "held": held, "echoed": echoed, "errors": len(errors) + (len(socks) - echoed),
                "error_examples": sorted(set(errors))[:3],
                "worker_before_kib": worker0, "worker_after_kib": worker1,
                "master_before_kib": master0, "master_after_kib": master1,
                "worker_kib_per_conn": (worker1 - worker0) / len(socks) if socks else None,
                "master_kib_per_conn": (master1 - master0) / len(socks) if socks and master0 else None,
            })
            rec["ok"] = held > 0
            if not rec["ok"]:
                rec["error"] = f"no connection held: {rec['error_examples']}"
    except (ServerError, RuntimeError, OSError) as e:
        rec["error"] = f"{type(e).__name__}: {e}"[:300]
    finally:
        wsl.close_all(socks)
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_harness_args(ap, "rsgi,uvicorn,uvicorn-websockets,granian,gunicorn-uvicorn")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated: echo, idle")
    ap.add_argument("--ws-connections", type=int, default=64, help="connections of the echo client (64)")
    ap.add_argument("--idle", type=int, default=900, help="connections of the idle scenario (900)")
    args = ap.parse_args()
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if any(s not in SCENARIOS for s in scenarios):
        ap.error(f"scenarios are {', '.join(SCENARIOS)}")
    harness = Harness(args)
    records = []
    print(f"{args.ws_connections} echo connections for {args.duration:g}s, {args.idle} idle, "
          f"{args.runs} round(s), server core {harness.server_core}, client core {harness.client_core}",
          flush=True)
    for r, order in harness.rounds():
        for name in scenarios:
            for server in order:
                rec = (echo if name == "echo" else idle)(harness, server)
                rec["run"] = r
                records.append(rec)
                if not rec["ok"]:
                    print(f"  round {r + 1} {name:5} {server.name:18} failed: {rec.get('error')}", flush=True)
                elif name == "echo":
                    print(f"  round {r + 1} echo  {server.name:18} {rec['rtps']:10,.0f} rt/s "
                          f"{rec['cpu_us']:7.1f} µs CPU/rt  p99 {rec['p99_ms']:.2f} ms  "
                          f"client CPU {rec['client_cpu_pct']:.0f} %  errors {rec['errors']}", flush=True)
                else:
                    print(f"  round {r + 1} idle  {server.name:18} {rec['held']}/{args.idle} held, "
                          f"worker {rec['worker_kib_per_conn']:.1f} KiB/conn, errors {rec['errors']}", flush=True)
    tables = []
    if "echo" in scenarios:
        rows = medians([x for x in records if x["scenario"] == "echo"], ("scenario", "server"),
                       [k for _, k, f in COLUMNS[3:] if k != "errors"], summed=("errors",))
        tables.append((rows, markdown(rows, COLUMNS)))
    if "idle" in scenarios:
        rows = medians([x for x in records if x["scenario"] == "idle"], ("scenario", "server"),
                       [k for _, k, f in IDLE_COLUMNS[3:] if k != "errors"], summed=("errors",))
        tables.append((rows, markdown(rows, IDLE_COLUMNS)))
    finish(harness, records, [row for rows, _ in tables for row in rows], "\n\n".join(t for _, t in tables))


if __name__ == "__main__":
    main()
