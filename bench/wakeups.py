"""Framework apps side by side with the client's view: requests per second,
the worker's user and system CPU per request (/proc), and the voluntary
context switches wrk makes per request (`/usr/bin/time -v` around wrk: how
often the server's writes woke the client up), plus wrk's p99.

One worker pinned to CPU 0, `wrk -t1` pinned to CPU 1, on 127.0.0.1; servers
interleaved round by round, each stopped by PID after its run.

    python3 bench/wakeups.py --app flask_hello:app --servers rsgi,bjoern,granian
    python3 bench/wakeups.py --app djangoproj.wsgi:application --baseline OTHER_VENV/bin/rsgi

``--baseline`` adds another rsgi build (for example one installed from an
older commit) as server ``rsgi-baseline``.
"""

import argparse
import os
import re
import subprocess
from pathlib import Path

from common import add_server_args, free_port, process_tree, server_args, user_system_ticks, wait_port

BENCH = Path(__file__).resolve().parent
APPS = BENCH / "apps"
CLK = os.sysconf("SC_CLK_TCK")


def command(name, app, port, bindir, baseline):
    rsgi_args = [app, "-w", "1", "-b", f"127.0.0.1:{port}"]
    return {
        "rsgi": [f"{bindir}/rsgi", *rsgi_args],
        "rsgi-baseline": [baseline or "", *rsgi_args],
        "bjoern": [f"{bindir}/python", str(BENCH / "serve_bjoern.py"), app, "127.0.0.1", str(port)],
        "granian": [f"{bindir}/granian", "--interface", "wsgi", "--workers", "1", "--host", "127.0.0.1",
                    "--port", str(port), app],
    }[name]


def run(name, app, conns, duration, bindir, baseline):
    port = free_port()
    proc = subprocess.Popen(["taskset", "-c", "0", *command(name, app, port, bindir, baseline)], cwd=str(APPS),
                            env=dict(os.environ, PYTHONPATH=str(APPS)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        url = f"http://127.0.0.1:{port}/"
        subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", "-d1s", url], capture_output=True, timeout=30)
        pids = process_tree(proc.pid)
        u0, s0 = user_system_ticks(pids)
        out = subprocess.run(["/usr/bin/time", "-v", "taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{duration}s",
                              "--latency", url], capture_output=True, text=True, timeout=duration + 30)
        u1, s1 = user_system_ticks(pids)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    n = int(re.search(r"(\d+) requests in", out.stdout).group(1))
    return {
        "server": name,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out.stdout).group(1)),
        "user_us": (u1 - u0) / CLK / n * 1e6,
        "system_us": (s1 - s0) / CLK / n * 1e6,
        "wakeups": int(re.search(r"Voluntary context switches: (\d+)", out.stderr).group(1)) / n,
        "p99": re.search(r"^\s+99%\s+(\S+)", out.stdout, re.M).group(1),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_args(ap, "rsgi,bjoern,granian")
    ap.add_argument("--app", default="flask_hello:app")
    ap.add_argument("--baseline", help="another rsgi executable, run as rsgi-baseline")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--duration", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    bindir, names = server_args(args)
    if args.baseline:
        names.insert(0, "rsgi-baseline")
    print(f"| app | server | req/s | worker user µs/req | worker system µs/req | client wake-ups/req | p99 |")
    print("|---|---|---|---|---|---|---|")
    for _ in range(args.rounds):
        for name in names:
            r = run(name, args.app, args.connections, min(args.duration, 60), bindir, args.baseline)
            print(f"| {args.app} | {name} | {r['rps']:,.0f} | {r['user_us']:.1f} | {r['system_us']:.1f} | "
                  f"{r['wakeups']:.3f} | {r['p99']} |", flush=True)


if __name__ == "__main__":
    main()
