"""Memory over a long run: does an rsgi worker grow over a million requests?

    python3 bench/soak.py [--apps hello,flask] [--requests 1000000]

Starts rsgi with one worker (pinned to core 0, wrk on core 1, loopback
only), warms it up with at least 50,000 requests, then loads it with wrk in bounded
steps until the request count is reached, reading the worker's and the
master's resident memory (VmRSS) after each step. Prints the readings and
the growth from the first to the last. Uses bench/.venv as run.py left it.
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bootstrap import BENCH  # noqa: E402
from load import HOST, http_get  # noqa: E402
from servers import APPS, SERVERS, RunningServer, process_tree, rss_kib  # noqa: E402


def wrk_requests(port, seconds):
    argv = ["taskset", "-c", "1", "wrk", "-t1", "-c64", f"-d{seconds}s", "--timeout=5s", f"http://{HOST}:{port}/"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return total, sum(int(x) for x in errors.groups()) if errors else 0


def soak(app_name, target):
    app = APPS[app_name]
    log = BENCH / "results" / "logs" / "soak.log"
    readings = []
    with RunningServer(SERVERS["rsgi"], app, log, core=0) as running:
        running.wait_ready(http_get)
        worker = [p for p in process_tree(running.pid) if p != running.pid][0]
        # Warm-up: imports, caches and allocator pools settle first.
        done, errors = 0, 0
        rate = None
        while done < 50_000:
            n, e = wrk_requests(running.port, 2)
            done, errors, rate = done + n, errors + e, n / 2
        readings.append((done, rss_kib(worker), rss_kib(running.pid)))
        step = max(2, min(30, int(target / 8 / max(rate, 1))))
        served = 0
        while served < target:
            n, e = wrk_requests(running.port, step)
            served, errors = served + n, errors + e
            readings.append((done + served, rss_kib(worker), rss_kib(running.pid)))
    return readings, served, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--apps", default="hello,flask")
    ap.add_argument("--requests", type=int, default=1_000_000)
    args = ap.parse_args()
    for name in args.apps.split(","):
        readings, served, errors = soak(name, args.requests)
        print(f"\n{name}: {served:,} requests after a warm-up of {readings[0][0]:,}, wrk errors {errors}")
        print(f"{'requests':>10} {'worker RSS MiB':>15} {'master RSS MiB':>15}")
        for count, worker, master in readings:
            print(f"{count:>10,} {worker / 1024:>15.1f} {master / 1024:>15.1f}")
        first, last = readings[0], readings[-1]
        print(f"growth: worker {(last[1] - first[1]) / 1024:+.2f} MiB, master {(last[2] - first[2]) / 1024:+.2f} MiB")


if __name__ == "__main__":
    main()
