"""ASGI side by side: rsgi's ASGI worker, granian (--interface asgi),
uvicorn, and gunicorn with uvicorn-worker's UvicornWorker, one worker each,
on the raw ASGI hello and the FastAPI hello (bench/apps/asgi_hello.py).

    python3 bench/asgi.py --python bench/.venv/bin/python [--duration 10]

The Python environment must have rsgi, and whichever of granian, uvicorn,
uvicorn-worker + gunicorn, fastapi it should compare (a missing one is
reported and skipped); `bench/run.py` (bench/bootstrap.py) installs them
all into bench/.venv. Each pair: a fresh server, 1 s of warm-up, then
`wrk -t1 -cN` for the duration; requests per second, and CPU time of the
server's whole process tree per request (from /proc), which moves less than
throughput when the machine is shared. Servers are started pinned to core 0
and wrk to core 1 when the machine has two cores or more (`--no-pin` to
leave them free). Loopback only; every server is stopped by its PID.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
APPS_DIR = BENCH / "apps"
CLK_TCK = os.sysconf("SC_CLK_TCK")

APPS = {"hello": "asgi_hello:hello", "fastapi": "asgi_hello:fastapi_hello"}


def server_argv(name, bindir, target, port):
    b = lambda tool: str(Path(bindir) / tool)  # noqa: E731
    if name == "rsgi":
        return [b("rsgi"), target, "-w", "1", "-k", "uvicorn.workers.UvicornWorker", "-b", f"127.0.0.1:{port}"]
    if name == "granian":
        return [b("granian"), "--interface", "asgi", "--workers", "1", "--host", "127.0.0.1",
                "--port", str(port), "--no-ws", target]
    if name == "uvicorn":
        return [b("uvicorn"), target, "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
                "--log-level", "warning"]
    if name == "gunicorn-uvicorn":
        return [b("gunicorn"), "-w", "1", "-k", "uvicorn_worker.UvicornWorker", "-b", f"127.0.0.1:{port}", target]
    raise ValueError(name)


NEEDS = {"rsgi": "rsgi", "granian": "granian", "uvicorn": "uvicorn", "gunicorn-uvicorn": "gunicorn"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree(root):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    data = f.read()
                children.setdefault(int(data[data.rindex(")") + 2:].split()[1]), []).append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rindex(")") + 2:].split()
        total += sum(int(x) for x in fields[11:15])
    return total


def wait_ready(port, proc, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def wrk(port, duration, connections, core):
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", f"http://127.0.0.1:{port}/"]
    if core is not None:
        argv = ["taskset", "-c", str(core), *argv]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    return (float(m.group(1)) if m else 0.0), (int(total.group(1)) if total else 0), (errors.group(0) if errors else "")


def measure(name, bindir, app, duration, connections, pin):
    port = free_port()
    argv = server_argv(name, bindir, APPS[app], port)
    if pin:
        argv = ["taskset", "-c", "0", *argv]
    log = open(BENCH / ".asgi-bench.log", "ab")
    proc = subprocess.Popen(argv, cwd=APPS_DIR, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        if not wait_ready(port, proc):
            return None
        wrk(port, 1, connections, 1 if pin else None)
        pids = tree(proc.pid)
        before = ticks(pids)
        rps, total, errors = wrk(port, duration, connections, 1 if pin else None)
        used = ticks(pids) - before
        cpu_us = used / CLK_TCK * 1e6 / total if total else 0.0
        return rps, cpu_us, errors
    finally:
        for pid in reversed(tree(proc.pid)):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            for pid in tree(proc.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait(5)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", default=str(BENCH / ".venv" / "bin" / "python"))
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--servers", default="rsgi,granian,uvicorn,gunicorn-uvicorn")
    p.add_argument("--apps", default="hello,fastapi")
    p.add_argument("--no-pin", action="store_true")
    args = p.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed")
    bindir = Path(os.path.abspath(args.python)).parent
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2
    rows = []
    for app in args.apps.split(","):
        for name in args.servers.split(","):
            if not (bindir / NEEDS[name]).exists():
                rows.append((app, name, "not installed", "", ""))
                continue
            got = measure(name, bindir, app, args.duration, args.connections, pin)
            if got is None:
                rows.append((app, name, "did not start (see bench/.asgi-bench.log)", "", ""))
                continue
            rps, cpu_us, errors = got
            rows.append((app, name, f"{rps:,.0f}", f"{cpu_us:.1f}", errors))
            print(f"{app:8} {name:18} {rps:10,.0f} req/s {cpu_us:7.1f} us CPU/req {errors}", flush=True)
    print()
    print("| app | server | req/s | CPU µs/req | notes |")
    print("|---|---|---:|---:|---|")
    for r in rows:
        print("| %s | %s | %s | %s | %s |" % r)


if __name__ == "__main__":
    main()
