"""Stop under load: what happens to requests when the server gets TERM?

Each server runs ``bench/apps/slowfast.py`` (``/slow?s=0.02``: 20 ms per
request) with two workers; 32 client threads send requests, each on a new
connection (or 16 threads on kept-alive connections with ``--keepalive``),
and TERM is sent 1.5 s in. Every request ends served, refused (the client
never connected: it knows the server did not take it) or lost (connected,
sent, and reset or closed without an answer). Load from
``tests/stopgen.py``; runs interleaved, servers stopped by PID.

    python3 bench/graceful_stop.py
    python3 bench/graceful_stop.py --python .venv/bin/python --servers rsgi,gunicorn-sync --keepalive
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
from stopgen import StopLoad  # noqa: E402
from common import add_server_args, free_port, server_args, wait_port  # noqa: E402


def commands(bindir, port):
    b = f"127.0.0.1:{port}"
    return {
        "rsgi": [f"{bindir}/rsgi", "slowfast:app", "-w", "2", "-b", b],
        "rsgi-threads4": [f"{bindir}/rsgi", "slowfast:app", "-w", "2", "--threads", "4", "-b", b],
        "gunicorn-sync": [f"{bindir}/gunicorn", "slowfast:app", "-w", "2", "-b", b],
        "gunicorn-gthread": [f"{bindir}/gunicorn", "slowfast:app", "-w", "2", "-k", "gthread", "--threads", "4", "-b", b],
    }


def run_one(name, argv, port, keepalive):
    log = tempfile.NamedTemporaryFile(prefix=f"stop-{name}-", suffix=".log", delete=False)
    proc = subprocess.Popen(argv, cwd=str(BENCH / "apps"), stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_port(port, proc)
        with StopLoad(("127.0.0.1", port), path="/slow?s=0.02", threads=16 if keepalive else 32,
                      keepalive=keepalive, duration=40) as load:
            time.sleep(1.5)
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
            time.sleep(1.0)
        return dict(server=name, **load.counts())
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        os.unlink(log.name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_args(ap, "rsgi,rsgi-threads4,gunicorn-sync,gunicorn-gthread")
    ap.add_argument("--keepalive", action="store_true", help="16 keep-alive clients instead of 32 new-connection ones")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    bindir, names = server_args(args)
    rows = []
    for _ in range(args.runs):
        for name in names:
            port = free_port()
            argv = commands(bindir, port)[name]
            if not os.path.exists(argv[0]):
                print(f"{name}: {argv[0]} not installed")
                continue
            row = run_one(name, argv, port, args.keepalive)
            print(row, flush=True)
            rows.append(row)
    print()
    print("| server | served | refused after the stop | lost (reset after being accepted) | idle keep-alive closes retried |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['server']} | {r['served']:,} | {r['refused']:,} | {r['lost']} | {r['idle_closed']} |")


if __name__ == "__main__":
    main()
