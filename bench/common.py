"""Helpers the benchmark scripts share: a free loopback port, waiting for a
started server, one request answered up to the close, reading its process
tree's CPU time from /proc, and the `--python` / `--servers` arguments.

Imported by the scripts in bench/ (each runs with bench/ on sys.path).
"""

import os
import socket
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(proc, ready, timeout=30.0):
    """Poll `ready()` (an OSError counts as not yet) until it is true, the
    process `proc` exits, or `timeout` seconds pass. True when ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if ready():
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def wait_port(port, proc, timeout=30.0):
    """Wait until 127.0.0.1:`port` accepts a connection (see `wait_until`)."""
    def accepts():
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    return wait_until(proc, accepts, timeout)


def exchange(port, request, timeout=5.0):
    """Send `request` (bytes) on a new connection to 127.0.0.1:`port` and
    return all the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        return b"".join(iter(lambda: s.recv(65536), b""))


def stat_fields(pid):
    """Fields of /proc/PID/stat after the command name (index 0 is the state)."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    return data[data.rindex(")") + 2:].split()


def process_tree(root):
    """The root PID and all its live descendants, root first."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(stat_fields(entry)[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def user_system_ticks(pids, children=False):
    """(utime, stime) in clock ticks, summed over the PIDs still alive; with
    ``children``, the reaped children's (cutime, cstime) are added in."""
    user = system = 0
    for pid in pids:
        try:
            f = stat_fields(pid)
        except OSError:
            continue
        # After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
        user += int(f[11]) + (int(f[13]) if children else 0)
        system += int(f[12]) + (int(f[14]) if children else 0)
    return user, system


def add_server_args(ap, servers, python=None):
    """`--python` (the environment whose bin/ has the servers) and
    `--servers` (comma-separated names, default `servers`)."""
    ap.add_argument("--python", default=python or str(BENCH / ".venv" / "bin" / "python"),
                    help="interpreter whose environment has the servers")
    ap.add_argument("--servers", default=servers)


def server_args(args):
    """(bin directory, server names) from the arguments `add_server_args` added."""
    bindir = str(Path(args.python).absolute().parent)
    return bindir, [n.strip() for n in args.servers.split(",") if n.strip()]
