"""Load on 127.0.0.1: wrk runs, the new-client probe, and the slow clients.

Runs in the harness process (pinned to the client core). Every network call
here has a timeout and targets the loopback address only; wrk always gets -d
and --timeout, and the subprocess that runs it a deadline of its own.
"""

import json
import os
import resource
import selectors
import socket
import subprocess
import threading
import time

from bootstrap import BENCH

HOST = "127.0.0.1"
WRK_LUA = BENCH / "wrk.lua"
PROBE_INTERVAL = 0.5  # seconds between two new-client probes
PROBE_TIMEOUT = 5.0  # seconds a probe may take before it counts as a failure
SLOW_HEAD = b"GET / HTTP/1.1\r\nHost: x\r\n"  # a request head that never ends


def http_get(port, path="/", timeout=5.0):
    """One GET on a fresh connection; returns (status, body length). Raises OSError."""
    deadline = time.monotonic() + timeout
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the end of the response head")
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        got = len(body)
        while length is None or got < length:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = s.recv(1 << 20)
            if not chunk:
                if length is None:
                    break
                raise ConnectionError(f"closed after {got} of {length} body bytes")
            got += len(chunk)
        return status, got


def run_wrk(port, app, duration, connections, core=None, timeout_s=5):
    """Run wrk for `duration` seconds; return its figures as a dict (raises on failure)."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", f"--timeout={timeout_s}s",
            "--latency", "-s", str(WRK_LUA), f"http://{HOST}:{port}/"]
    if core is not None:
        argv = ["taskset", "-c", str(core), *argv]
    env = dict(os.environ, BENCH_POST_BYTES=str(app.post_bytes))
    # wrk is the only child reaped during the run: the difference in the
    # children's voluntary context switches is wrk's (how often the server's
    # writes found it asleep and woke it up).
    vcsw0 = resource.getrusage(resource.RUSAGE_CHILDREN).ru_nvcsw
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=duration + 60)
    client_vcsw = resource.getrusage(resource.RUSAGE_CHILDREN).ru_nvcsw - vcsw0
    for line in r.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            d = json.loads(line[len("BENCH_JSON "):])
            break
    else:
        raise RuntimeError(f"wrk exited {r.returncode} without a result: {(r.stderr or r.stdout)[-300:]}")
    secs = d["duration_us"] / 1e6
    socket_errors = d["connect"] + d["read"] + d["write"] + d["timeout"]
    return {
        "requests": d["requests"],
        "rps": d["requests"] / secs if secs > 0 else 0.0,
        "p50_ms": d["p50_us"] / 1000,
        "p90_ms": d["p90_us"] / 1000,
        "p99_ms": d["p99_us"] / 1000,
        "max_ms": d["max_us"] / 1000,
        "socket_errors": socket_errors,
        "non2xx": d["status"],
        "errors": socket_errors + d["status"],
        "error_detail": {k: d[k] for k in ("connect", "read", "write", "timeout", "status")},
        "bytes": d["bytes"],
        "seconds": secs,
        "client_vcsw_per_req": client_vcsw / d["requests"] if d["requests"] else None,
    }


class Probe(threading.Thread):
    """Every 0.5 s, a brand-new client GETs `path` and times the full response."""

    def __init__(self, port, path="/"):
        super().__init__(daemon=True)
        self.port, self.path = port, path
        self.times_ms = []
        self.failures = []
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            t0 = time.monotonic()
            try:
                status, _ = http_get(self.port, self.path, timeout=PROBE_TIMEOUT)
                if status >= 400:
                    self.failures.append(f"status {status}")
                else:
                    self.times_ms.append((time.monotonic() - t0) * 1000)
            except (OSError, ValueError, IndexError) as e:
                self.failures.append(f"{type(e).__name__}: {e}"[:120])
            self._halt.wait(max(0.0, PROBE_INTERVAL - (time.monotonic() - t0)))

    def finish(self):
        self._halt.set()
        self.join(PROBE_TIMEOUT + 2)
        return {
            "count": len(self.times_ms) + len(self.failures),
            "max_ms": max(self.times_ms) if self.times_ms else None,
            "failures": len(self.failures),
            "failure_examples": sorted(set(self.failures))[:3],
            "times_ms": [round(t, 2) for t in self.times_ms],
        }


class SlowClients:
    """Hold N connections, each with a request head sent in part and never finished."""

    def __init__(self, port, count, connect_window=5.0):
        self.socks = []
        pending = {}
        sel = selectors.DefaultSelector()
        for _ in range(count):
            s = socket.socket()
            s.setblocking(False)
            err = s.connect_ex((HOST, port))
            if err == 0:
                self.socks.append(s)
            elif err in (115, 11):  # EINPROGRESS, EAGAIN
                pending[s.fileno()] = s
                sel.register(s, selectors.EVENT_WRITE)
            else:
                s.close()
        deadline = time.monotonic() + connect_window
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
                s = pending.pop(key.fd)
                sel.unregister(s)
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    self.socks.append(s)
                else:
                    s.close()
        for s in pending.values():
            sel.unregister(s)
            s.close()
        sel.close()
        self.requested = count
        self.connected = 0
        for s in self.socks:
            try:
                s.send(SLOW_HEAD)
                self.connected += 1
            except OSError:
                pass

    def still_open(self):
        """How many held connections the server has not closed (nor answered)."""
        alive = 0
        for s in self.socks:
            try:
                if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                    continue  # closed by the server
                continue  # the server answered (e.g. 408) instead of waiting
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
        return alive

    def close(self):
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
        self.socks = []


# --- the rest of the machine ----------------------------------------------------


def cpu_times():
    """{cpu index: (busy ticks, total ticks)} from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *vals = line.split()
                vals = [int(v) for v in vals[:8]]
                # user nice system idle iowait irq softirq steal: count what a
                # process (or the hypervisor, as steal) took, not interrupt work.
                busy = vals[0] + vals[1] + vals[2] + vals[7]
                out[int(name[3:])] = (busy, sum(vals))
    return out


def busy_pct(before, after, cpu):
    b0, t0 = before.get(cpu, (0, 0))
    b1, t1 = after.get(cpu, (0, 0))
    return 100.0 * (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


def wait_for_quiet(cpus, limit_pct=25.0, max_wait=60.0, sample=0.5):
    """Before a run, wait (bounded) until no core in `cpus` is busier than `limit_pct`.

    The benchmark shares the machine with whatever else runs there; this keeps
    a run from starting in the middle of someone else's build. Returns
    (seconds waited, busiest core's % in the last sample).
    """
    start = time.monotonic()
    while True:
        before = cpu_times()
        time.sleep(sample)
        after = cpu_times()
        worst = max((busy_pct(before, after, c) for c in cpus), default=0.0)
        waited = time.monotonic() - start
        if worst <= limit_pct or waited >= max_wait:
            return round(waited, 1), round(worst, 1)
