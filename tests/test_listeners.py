"""Listening sockets: IPv6 and several binds at once, fd://N, systemd socket
activation (through systemd-socket-activate, and through a launcher of our
own that places the descriptors at 3.. as systemd does), --reuse-port, unix
socket permissions, and bad binds refused with one line."""

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

import pytest

import conftest
from _rawhttp import RawConn, wait_for

APP = "listen_apps:app"
GUNICORN = conftest.SERVER_KIND == "gunicorn"


def http_get(sock_factory, path="/", timeout=10):
    """One GET over a fresh socket from ``sock_factory``; (status, JSON body)."""
    with RawConn(sock_factory(), timeout=timeout) as conn:
        conn.send(("GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % path).encode())
        resp = conn.read_response()
    return resp.status, json.loads(resp.body) if resp.body.startswith(b"{") else resp.body


def tcp(host, port, family=socket.AF_INET):
    def factory():
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect((host, port))
        return s
    return factory


def unix(path):
    def factory():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(path)
        return s
    return factory


def free_port6():
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


def start_bound(start_server, bind, *args, app=APP, connect=True):
    """Start the server on a bind of the test's choosing; wait until it has
    booted a worker (and, for a TCP bind, until it accepts a connection)."""
    srv = start_server(app, *args, bind=bind, wait=False)
    assert wait_for(lambda: "Booting worker with pid" in srv.log() or srv.proc.poll() is not None,
                    timeout=30), srv.log()
    assert srv.proc.poll() is None, srv.log()
    m = re.fullmatch(r"\[?([0-9a-f.:]+?)\]?:(\d+)", bind)
    if m:
        srv.host, srv.port = m.group(1), int(m.group(2))
        if connect:
            family = socket.AF_INET6 if ":" in srv.host else socket.AF_INET
            assert wait_for(lambda: _connects(srv.host, srv.port, family), timeout=30), srv.log()
    return srv


def _connects(host, port, family):
    try:
        tcp(host, port, family)().close()
        return True
    except OSError:
        return False


def listening_lines(log):
    return re.findall(r"Listening at: (\S+)", log)


def run_to_exit(argv, env=None, timeout=30, pass_fds=()):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "RSGI_", "GUNICORN_"))}
    full_env.pop("WEB_CONCURRENCY", None)
    full_env.update(env or {})
    return subprocess.run(argv, cwd=str(conftest.APPS), env=full_env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, pass_fds=pass_fds)


def one_error_line(output):
    """The lines of a failed start that are errors (the rest is INFO)."""
    return [l for l in output.splitlines() if l.strip() and "[INFO]" not in l]


# -- IPv6 and several binds --------------------------------------------------

def test_ipv6_loopback(start_server):
    port = free_port6()
    srv = start_bound(start_server, "[::1]:%d" % port)
    assert "Listening at: http://[::1]:%d" % port in srv.log()
    status, body = http_get(tcp("::1", port, socket.AF_INET6))
    assert status == 200
    assert body["remote_addr"] == "::1"
    assert (body["server_name"], body["server_port"]) == ("::1", str(port))
    # Bound to ::1 only (IPV6_V6ONLY): the IPv4 loopback is not served.
    with pytest.raises(OSError):
        tcp("127.0.0.1", port)()


def test_several_binds_at_once(start_server, tmp_path):
    port4, port6 = conftest.free_port(), free_port6()
    path = str(tmp_path / "app.sock")
    srv = start_bound(start_server, "127.0.0.1:%d" % port4, "-b", "[::1]:%d" % port6,
                      "-b", "unix:" + path, "-w", "2")
    assert listening_lines(srv.log()) == [
        "http://127.0.0.1:%d" % port4, "http://[::1]:%d" % port6, "unix:" + path]
    for factory, name in [(tcp("127.0.0.1", port4), "127.0.0.1"),
                          (tcp("::1", port6, socket.AF_INET6), "::1"),
                          (unix(path), None)]:
        for _ in range(3):
            status, body = http_get(factory)
            assert status == 200
            assert body["server_name"] in ((name,) if name else ("t", None))
    assert srv.stop() == 0
    assert not os.path.exists(path)  # rsgi created it, rsgi removes it


# -- fd://N ------------------------------------------------------------------

def _spawn_with_fd(sock, *args):
    """Start the server with ``sock`` inherited at its own descriptor number."""
    log = tempfile.NamedTemporaryFile(prefix="rsgi-log-", suffix=".txt", delete=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "RSGI_", "GUNICORN_"))}
    env.pop("WEB_CONCURRENCY", None)
    proc = subprocess.Popen(
        [conftest.server_executable(), APP, "-b", "fd://%d" % sock.fileno(), *args],
        cwd=str(conftest.APPS), env=env, stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, pass_fds=(sock.fileno(),))
    return conftest.Server(proc, None, log.name)


def test_fd_bind_tcp_and_unix(tmp_path):
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    port = lsock.getsockname()[1]
    path = str(tmp_path / "fd.sock")
    usock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    usock.bind(path)  # bound but not listening: rsgi listens on it, as gunicorn
    servers = []
    try:
        servers.append(_spawn_with_fd(lsock))
        servers.append(_spawn_with_fd(usock))
        lsock.close()
        usock.close()
        status, body = http_get(tcp("127.0.0.1", port), timeout=30)
        assert status == 200 and body["server_port"] == str(port)
        assert wait_for(lambda: "Listening at: unix:" + path in servers[1].log(), timeout=30)
        status, _ = http_get(unix(path))
        assert status == 200
    finally:
        for s in servers:
            s.stop()
            os.unlink(s.log_path)


@pytest.mark.skipif(GUNICORN, reason="rsgi's one-line message")
@pytest.mark.parametrize("kind", ["closed", "file", "udp"])
def test_bad_fd_is_one_line_and_exit_1(tmp_path, kind):
    keep = None
    if kind == "closed":
        fd = 250
        passed = ()
    elif kind == "file":
        keep = open(tmp_path / "f", "w")
        fd = keep.fileno()
        passed = (fd,)
    else:
        keep = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        keep.bind(("127.0.0.1", 0))
        fd = keep.fileno()
        passed = (fd,)
    try:
        res = run_to_exit([conftest.server_executable(), APP, "-b", "fd://%d" % fd], pass_fds=passed)
    finally:
        if keep:
            keep.close()
    assert res.returncode == 1, res.stdout
    errors = one_error_line(res.stdout)
    assert len(errors) == 1, res.stdout
    assert "fd://%d" % fd in errors[0]
    assert "Traceback" not in res.stdout


@pytest.mark.parametrize("spec,words", [
    ("999.1.1.1:80", ["999.1.1.1"]),
    ("127.0.0.1:notaport", ["notaport"]),
    ("unix:/nonexistent-dir-rsgi/app.sock", ["/nonexistent-dir-rsgi/app.sock"]),
])
def test_bad_bind_is_one_line_and_exit_1(spec, words):
    res = run_to_exit([conftest.server_executable(), APP, "-b", spec])
    assert res.returncode == 1, res.stdout
    if not GUNICORN:
        errors = one_error_line(res.stdout)
        assert len(errors) == 1, res.stdout
        assert all(w in errors[0] for w in words), res.stdout
    assert "Traceback" not in res.stdout


# -- --reuse-port ------------------------------------------------------------

def test_reuse_port_lets_a_second_server_share_the_port(start_server):
    port = conftest.free_port()
    first = start_bound(start_server, "127.0.0.1:%d" % port, "--reuse-port", app="basic:app")
    assert "not supported" not in first.log()
    # A second server with --reuse-port binds the same port and serves it too:
    # connections spread over both (the kernel hashes them to one socket).
    second = start_bound(start_server, "127.0.0.1:%d" % port, "--reuse-port", app="basic:app")
    pids_first = {int(l) for l in re.findall(r"Booting worker with pid: (\d+)", first.log())}
    pids_second = {int(l) for l in re.findall(r"Booting worker with pid: (\d+)", second.log())}
    seen = set()

    def served_by_both():
        for _ in range(20):
            with RawConn(first.connect(), timeout=10) as conn:
                conn.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                resp = conn.read_response()
            assert resp.status == 200
            seen.add(int(resp.header("x-worker-pid")))
        return seen & pids_first and seen & pids_second
    assert wait_for(served_by_both, timeout=30), (seen, pids_first, pids_second)


def test_without_reuse_port_the_port_is_taken(start_server):
    port = conftest.free_port()
    start_bound(start_server, "127.0.0.1:%d" % port, app="basic:app")
    res = run_to_exit([conftest.server_executable(), "basic:app", "-b", "127.0.0.1:%d" % port,
                       "--reuse-port"], timeout=60)
    assert res.returncode == 1, res.stdout
    assert "Address already in use" in res.stdout or "in use" in res.stdout


# -- unix socket permissions ---------------------------------------------------

@pytest.mark.parametrize("umask,mode", [(None, 0o777), ("0o007", 0o770), ("0o077", 0o700), ("0o117", 0o660)])
def test_unix_socket_mode_follows_umask(start_server, umask, mode):
    args = ["-m", umask] if umask else []
    srv = start_server(APP, *args, unix=True)
    st = os.stat(srv.unix_path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == mode
    status, _ = http_get(srv.connect)
    assert status == 200


@pytest.mark.skipif(GUNICORN, reason="reads the worker's umask from /proc")
def test_umask_does_not_become_the_processes_umask(start_server):
    # As gunicorn: --umask is for the socket file; the processes (and the
    # files the app writes) keep the umask rsgi was started with.
    expected = os.umask(0)
    os.umask(expected)
    mask = 0o077 if expected != 0o077 else 0o007
    srv = start_server(APP, "-m", oct(mask), unix=True)
    assert wait_for(lambda: re.search(r"Booting worker with pid: (\d+)", srv.log()), timeout=30)
    worker = int(re.search(r"Booting worker with pid: (\d+)", srv.log()).group(1))
    assert stat.S_IMODE(os.stat(srv.unix_path).st_mode) == 0o777 & ~mask
    for pid in (srv.pid, worker):
        with open("/proc/%d/status" % pid) as f:
            line = next(l for l in f if l.startswith("Umask:"))
        assert int(line.split()[1], 8) == expected


# -- systemd socket activation -------------------------------------------------

# Places the inherited descriptors named on its command line at 3, 4, ...,
# sets LISTEN_PID to its own pid (which exec keeps), then execs the server:
# what systemd does for a socket unit's service.
LAUNCHER = r"""
import fcntl, os, sys
fds = [int(x) for x in sys.argv[1].split(",")]
pid_value = sys.argv[2]
argv = sys.argv[3:]
top = 3 + len(fds)
tmp = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, max(top, 64)) for fd in fds]  # out of the way of 3..
for i, fd in enumerate(tmp):
    os.dup2(fd, 3 + i)                    # dup2 makes the copy inheritable
for fd in tmp + [fd for fd in fds if fd >= top]:
    os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid()) if pid_value == "self" else pid_value
os.execv(argv[0], argv)
"""


def _activate(sockets, *args, fdnames=None, listen_fds=None, pid="self", wait_log=None):
    """Start the server as systemd would, with ``sockets`` at fds 3...;
    returns a conftest.Server once the log shows ``wait_log``."""
    log = tempfile.NamedTemporaryFile(prefix="rsgi-log-", suffix=".txt", delete=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "RSGI_", "GUNICORN_"))}
    env.pop("WEB_CONCURRENCY", None)
    env["LISTEN_FDS"] = str(len(sockets)) if listen_fds is None else listen_fds
    if fdnames is not None:
        env["LISTEN_FDNAMES"] = fdnames
    fds = [s.fileno() for s in sockets]
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, ",".join(map(str, fds)), pid,
         conftest.server_executable(), APP, *args],
        cwd=str(conftest.APPS), env=env, stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, pass_fds=fds)
    srv = conftest.Server(proc, None, log.name)
    if wait_log:
        ok = wait_for(lambda: wait_log in srv.log() or proc.poll() is not None, timeout=30)
        assert ok and proc.poll() is None, srv.log()
    return srv


@pytest.fixture
def activated():
    started = []

    def start(*a, **kw):
        srv = _activate(*a, **kw)
        started.append(srv)
        return srv
    yield start
    for srv in started:
        srv.stop()
        os.unlink(srv.log_path)


def _tcp_listener(family=socket.AF_INET, host="127.0.0.1"):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((host, 0))
    s.listen(16)
    return s


def test_socket_activation_with_names(activated, tmp_path):
    t4, t6 = _tcp_listener(), _tcp_listener(socket.AF_INET6, "::1")
    path = str(tmp_path / "activated.sock")
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.bind(path)
    u.listen(16)
    port4, port6 = t4.getsockname()[1], t6.getsockname()[1]
    other = conftest.free_port()
    # -b is ignored when systemd hands sockets over, as in gunicorn.
    srv = activated([t4, t6, u], "-w", "2", "-b", "127.0.0.1:%d" % other,
                    fdnames="web:web6:admin", wait_log="Booting worker")
    for s in (t4, t6, u):
        s.close()
    log = srv.log()
    for fd, name in [(3, "web"), (4, "web6"), (5, "admin")]:
        assert "Socket activation: fd %d (%s) from systemd" % (fd, name) in log
    assert listening_lines(log) == [
        "http://127.0.0.1:%d" % port4, "http://[::1]:%d" % port6, "unix:" + path]
    for factory in (tcp("127.0.0.1", port4), tcp("::1", port6, socket.AF_INET6), unix(path)):
        status, body = http_get(factory)
        assert status == 200
        # The variables are consumed: workers and the app do not see them.
        assert body["listen_env"] == {} and body["child_env"] == {}
    assert not _connects("127.0.0.1", other, socket.AF_INET)
    # The socket file is systemd's: stopping rsgi leaves it in place.
    assert srv.stop() == 0
    assert os.path.exists(path)


def test_socket_activation_for_another_pid_is_ignored(activated):
    # LISTEN_PID names another process (rsgi's parent was activated): the
    # variables are not rsgi's, so it binds -b as usual.
    t4 = _tcp_listener()
    port = conftest.free_port()
    srv = activated([t4], "-b", "127.0.0.1:%d" % port, pid="1", wait_log="Booting worker")
    t4.close()
    assert "Socket activation" not in srv.log()
    assert listening_lines(srv.log()) == ["http://127.0.0.1:%d" % port]
    status, body = http_get(tcp("127.0.0.1", port))
    assert status == 200


@pytest.mark.skipif(GUNICORN, reason="rsgi's one-line message")
@pytest.mark.parametrize("listen_fds", ["two", "1"])
def test_bad_socket_activation_is_one_line_and_exit_1(tmp_path, listen_fds):
    # "two" is not a count; "1" with a plain file at fd 3 is not a socket.
    f = open(tmp_path / "not-a-socket", "w")
    try:
        srv = _activate([f], listen_fds=listen_fds)
        srv.proc.wait(timeout=30)
        out = srv.log()
        os.unlink(srv.log_path)
    finally:
        f.close()
    assert srv.proc.returncode == 1, out
    errors = one_error_line(out)
    assert len(errors) == 1, out
    assert ("LISTEN_FDS" if listen_fds == "two" else "fd://3") in errors[0]


def test_systemd_socket_activate(tmp_path):
    SOCKET_ACTIVATE = conftest.require_tool("systemd-socket-activate", "systemd")
    port = conftest.free_port()
    path = str(tmp_path / "ssa.sock")
    log = tempfile.NamedTemporaryFile(prefix="rsgi-log-", suffix=".txt", delete=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "RSGI_", "GUNICORN_"))}
    env.pop("WEB_CONCURRENCY", None)
    # It listens, starts the command on the first connection with the
    # sockets at fds 3.. (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES), and
    # becomes that command (exec), so its pid is rsgi's master.
    proc = subprocess.Popen(
        [SOCKET_ACTIVATE, "-l", "127.0.0.1:%d" % port, "-l", path, "--fdname=http:local",
         "-E", "PATH=" + env.get("PATH", ""), conftest.server_executable(), APP, "-w", "2"],
        cwd=str(conftest.APPS), env=env, stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL)
    srv = conftest.Server(proc, port, log.name)
    try:
        assert wait_for(lambda: "Listening on 127.0.0.1:%d" % port in srv.log() and os.path.exists(path),
                        timeout=30), srv.log()
        # The first request starts rsgi and is answered by it.
        status, body = http_get(tcp("127.0.0.1", port), timeout=60)
        assert status == 200 and body["listen_env"] == {} and body["child_env"] == {}
        status, _ = http_get(unix(path))
        assert status == 200
        out = srv.log()
        assert "Socket activation: fd 3 (http) from systemd" in out
        assert "Socket activation: fd 4 (local) from systemd" in out
        assert re.search(r"\[%d\] \[INFO\] Starting rsgi" % proc.pid, out), out
        assert srv.stop() == 0
        assert os.path.exists(path)
    finally:
        srv.stop(signal.SIGKILL)
        os.unlink(log.name)


def _read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open("/proc/%d/stat" % pid) as f:
        return f.read().split(")")[-1].split()[0] == "Z"


@pytest.mark.skipif(GUNICORN, reason="rsgi's pid file and log lines")
def test_socket_activation_survives_usr2(activated, tmp_path):
    # After USR2 the new master serves systemd's socket, and when it stops
    # in the end the socket file is still systemd's: not removed.
    path = str(tmp_path / "activated.sock")
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.bind(path)
    u.listen(16)
    pidfile = str(tmp_path / "app.pid")
    srv = activated([u], "-w", "1", "-p", pidfile, fdnames="http", wait_log="Booting worker")
    u.close()
    srv.proc.send_signal(signal.SIGUSR2)
    new_master = wait_for(lambda: _read_pid(pidfile + ".2"), timeout=30)
    try:
        assert new_master and new_master != srv.pid, srv.log()
        assert wait_for(lambda: srv.log().count("Booting worker") >= 2, timeout=30), srv.log()
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(timeout=40) == 0
        assert wait_for(lambda: _read_pid(pidfile) == new_master, timeout=30), srv.log()
        status, body = http_get(unix(path))
        assert status == 200 and body["listen_env"] == {} and body["child_env"] == {}
        assert os.path.exists(path)
    finally:
        if not _gone(new_master):
            os.kill(new_master, signal.SIGTERM)
    assert wait_for(lambda: _gone(new_master), timeout=40)
    assert wait_for(lambda: not os.path.exists(pidfile), timeout=10)
    assert os.path.exists(path)
