"""Isolation scenario: does a slow request hold up other clients?

Each server runs ``bench/apps/slowfast.py`` with two workers. Eight client
threads call ``/fast`` back to back on keep-alive connections while one
client calls ``/slow`` (a 1 s sleep) every ``--slow-every`` seconds, all on
127.0.0.1, for ``--duration`` seconds. Printed per server: fast requests
served, their p50/p99/max latency, how many took over 100 ms, failures, and
slow requests served. Runs are interleaved (every server once, then again).

    python3 bench/isolation.py                      # the bench venv's servers
    python3 bench/isolation.py --python .venv/bin/python --servers rsgi,rsgi-threads2,gunicorn-sync

Bounded: each run stops itself after ``--duration`` seconds (at most 60),
every request has a 10 s socket timeout, and servers are stopped by PID.
"""

import argparse
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import add_server_args, free_port, server_args, wait_until

BENCH = Path(__file__).resolve().parent
APPS = BENCH / "apps"
MAX_DURATION = 60.0


def commands(bindir, port):
    """Server name -> argv, two workers each."""
    b = f"127.0.0.1:{port}"
    return {
        "rsgi": [f"{bindir}/rsgi", "slowfast:app", "-w", "2", "-b", b],
        "rsgi-threads2": [f"{bindir}/rsgi", "slowfast:app", "-w", "2", "--threads", "2", "-b", b],
        "gunicorn-sync": [f"{bindir}/gunicorn", "slowfast:app", "-w", "2", "-b", b],
        "gunicorn-gthread": [f"{bindir}/gunicorn", "slowfast:app", "-w", "2", "-k", "gthread", "--threads", "2", "-b", b],
        "granian": [f"{bindir}/granian", "--interface", "wsgi", "--workers", "2", "--host", "127.0.0.1",
                    "--port", str(port), "slowfast:app"],
    }


def wait_ready(port, proc, timeout=30.0):
    def answers():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            c.request("GET", "/fast")
            return c.getresponse().read() == b"fast\n"
        finally:
            c.close()
    return wait_until(proc, answers, timeout)


def fast_client(port, stop, out):
    conn = None
    while not stop.is_set():
        start = time.monotonic()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/fast")
            resp = conn.getresponse()
            body = resp.read()
            ok = resp.status == 200 and body == b"fast\n"
            if resp.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            ok = False
            out.append(("error", time.monotonic() - start, repr(e)))
            if conn is not None:
                conn.close()
            conn = None
            continue
        out.append(("ok" if ok else "bad", time.monotonic() - start, None))
    if conn is not None:
        conn.close()


def slow_client(port, stop, every, out):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while not stop.wait(every):
        start = time.monotonic()
        try:
            conn.request("GET", "/slow")
            resp = conn.getresponse()
            resp.read()
            out.append(resp.status == 200)
        except (OSError, http.client.HTTPException):
            out.append(False)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        if time.monotonic() - start > 5:
            break
    conn.close()


def run_one(name, argv, port, duration, clients, slow_every):
    log = tempfile.NamedTemporaryFile(prefix=f"isolation-{name}-", suffix=".log", delete=False)
    env = dict(os.environ, PYTHONPATH=str(APPS))
    proc = subprocess.Popen(argv, cwd=str(APPS), env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        if not wait_ready(port, proc):
            return {"server": name, "error": "did not start (log: %s)" % log.name}
        stop = threading.Event()
        fast, slow = [], []
        threads = [threading.Thread(target=fast_client, args=(port, stop, fast)) for _ in range(clients)]
        threads.append(threading.Thread(target=slow_client, args=(port, stop, slow_every, slow)))
        for t in threads:
            t.start()
        stop.wait(min(duration, MAX_DURATION))
        stop.set()
        for t in threads:
            t.join(15)
        lat = sorted(d for kind, d, _ in fast if kind == "ok")
        if not lat:
            return {"server": name, "error": "no fast request answered"}

        def pct(p):
            return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000

        return {
            "server": name,
            "fast": len(lat),
            "p50": pct(0.50),
            "p99": pct(0.99),
            "max": lat[-1] * 1000,
            "over100": sum(1 for d in lat if d > 0.1),
            "failed": sum(1 for kind, _, _ in fast if kind != "ok"),
            "slow": sum(slow),
            "slow_failed": sum(1 for s in slow if not s),
        }
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        os.unlink(log.name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_args(ap, "rsgi,rsgi-threads2,gunicorn-sync,gunicorn-gthread,granian")
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--slow-every", type=float, default=1.5)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    bindir, names = server_args(args)
    results = []
    for run in range(args.runs):
        for name in names:
            port = free_port()
            argv = commands(bindir, port).get(name)
            if argv is None:
                sys.exit(f"unknown server {name}")
            if not os.path.exists(argv[0]):
                results.append({"server": name, "error": f"{argv[0]} not installed"})
                continue
            r = run_one(name, argv, port, args.duration, args.clients, args.slow_every)
            r["run"] = run + 1
            results.append(r)
            print(r, flush=True)
    print()
    print("| server | run | fast served | fast p50 | fast p99 | fast max | fast > 100 ms | failed | slow served |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['server']} | {r.get('run', '')} | {r['error']} | | | | | | |")
            continue
        print(f"| {r['server']} | {r['run']} | {r['fast']:,} | {r['p50']:.2f} ms | {r['p99']:.2f} ms | "
              f"{r['max']:.1f} ms | {r['over100']} | {r['failed']} | {r['slow']} |")


if __name__ == "__main__":
    main()
