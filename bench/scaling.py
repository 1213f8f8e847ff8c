"""How rsgi scales from one worker to two, and what new connections cost.

    python3 bench/scaling.py [--duration 5] [--runs 2]

Runs rsgi with `-w 1` and `-w 2` on the hello app (unpinned: the workers
and wrk share the machine's cores), with wrk on kept-alive connections and
with a new connection per request (`Connection: close`), which is where a
thundering herd of workers woken for one connection would show: as CPU per
request that grows with the worker count. Prints requests/s, CPU µs per
request (master + workers, from /proc) and how the requests split between
the workers (their CPU time). Uses bench/.venv as run.py left it; loopback
only, every load bounded by wrk's -d.
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bootstrap import BENCH  # noqa: E402
from load import HOST, http_get  # noqa: E402
from servers import APPS, RunningServer, Server, _rsgi, cpu_ticks, process_tree  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def _rsgi_workers(n):
    def build(app, port):
        argv = _rsgi(app, port)
        i = argv.index("-w")
        return [*argv[:i + 1], str(n), *argv[i + 2:]]
    return Server(f"rsgi -w {n}", "rsgi", build, f"-w {n}")


def wrk(port, duration, close):
    argv = ["wrk", "-t1", "-c64", f"-d{duration}s", "--timeout=5s", f"http://{HOST}:{port}/"]
    if close:
        argv[1:1] = ["-H", "Connection: close"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = sum(int(x) for x in errors.groups()) if errors else 0
    return total, errs + (int(non2xx.group(1)) if non2xx else 0)


def measure(workers, close, duration):
    server = _rsgi_workers(workers)
    log = BENCH / "results" / "logs" / "scaling.log"
    with RunningServer(server, APPS["hello"], log) as running:
        running.wait_ready(http_get)
        time.sleep(0.5)
        pids = process_tree(running.pid)
        children = [p for p in pids if p != running.pid]
        before = {p: cpu_ticks([p]) for p in pids}
        t0 = time.monotonic()
        total, errors = wrk(running.port, duration, close)
        elapsed = time.monotonic() - t0
        after = {p: cpu_ticks([p]) for p in pids}
    used = {p: (after[p] - before[p]) / TICK for p in pids}
    cpu_us = sum(used.values()) / max(total, 1) * 1e6
    split = sorted((used[p] for p in children), reverse=True)
    share = [s / max(sum(split), 1e-9) for s in split]
    return {"req_s": total / elapsed, "cpu_us": cpu_us, "errors": errors, "share": share}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    rows = []
    for close in (False, True):
        for workers in (1, 2):
            results = [measure(workers, close, args.duration) for _ in range(args.runs)]
            best = max(results, key=lambda r: r["req_s"])
            rows.append((workers, close, best, sum(r["errors"] for r in results)))
    print(f"rsgi scaling on {os.cpu_count()} cores (hello, wrk -t1 -c64, best of {args.runs} x {args.duration} s, unpinned)")
    print(f"{'connections':<12} {'workers':>7} {'req/s':>9} {'x -w 1':>7} {'CPU µs/req':>10} {'worker CPU split':>18} {'errors':>6}")
    base = {}
    for workers, close, r, errors in rows:
        kind = "new per req" if close else "kept alive"
        base.setdefault(close, r["req_s"])
        split = " / ".join(f"{s:.0%}" for s in r["share"])
        print(f"{kind:<12} {workers:>7} {r['req_s']:>9,.0f} {r['req_s'] / base[close]:>7.2f} {r['cpu_us']:>10.1f} {split:>18} {errors:>6}")


if __name__ == "__main__":
    main()
