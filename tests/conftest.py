"""Shared fixtures: start the real server as a subprocess on a free loopback
port and talk to it over sockets.

The server under test is ``rsgi`` from the active environment.  Set
``RSGI_TEST_SERVER=gunicorn`` to run the same suite against gunicorn, which is
how the tests themselves are checked against the reference implementation.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"
SERVER_KIND = os.environ.get("RSGI_TEST_SERVER", "rsgi")
STARTUP_TIMEOUT = 30.0


def _importable(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


#: The worker kinds the suites that take one (the HTTP corpus, the PEP 3333
#: suites, the Flask example) run through: ``sync`` (rsgi's threaded worker)
#: and ``gevent`` (a greenlet per request), which needs gevent installed.
WORKER_KINDS = [
    "sync",
    pytest.param("gevent", marks=pytest.mark.skipif(not _importable("gevent"), reason="gevent is not installed")),
]


def kind_args(kind):
    """The command-line arguments that select worker ``kind``."""
    return [] if kind == "sync" else ["-k", kind]


def server_executable():
    name = "gunicorn" if SERVER_KIND == "gunicorn" else "rsgi"
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.exit(f"{name} is not installed in this environment", returncode=3)
    return found


def require_tool(name, package):
    """The path of a system tool the test drives, e.g. nginx. scripts/test
    installs the Debian package and sets RSGI_REQUIRE_TOOLS=1, so there a
    missing tool fails the test; elsewhere the test is skipped."""
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if found:
        return found
    message = "%s is missing (Debian package %s; scripts/test installs it)" % (name, package)
    if os.environ.get("RSGI_REQUIRE_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_tcp(host, port, proc, timeout=STARTUP_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_for_unix(path, proc, timeout=STARTUP_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if os.path.exists(path):
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(0.5)
                    s.connect(path)
                    return True
            except OSError:
                pass
        time.sleep(0.05)
    return False


def recv_until_close(sock, data=b""):
    """Everything the peer sends on ``sock`` until it closes (after
    ``data``, what was read already)."""
    return data + b"".join(iter(lambda: sock.recv(65536), b""))


class Server:
    """A running server process and how to reach it."""

    def __init__(self, proc, port, log_path, unix_path=None):
        self.proc = proc
        self.port = port
        self.host = "127.0.0.1"
        self.unix_path = unix_path
        self.log_path = log_path

    @property
    def pid(self):
        return self.proc.pid

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def log(self):
        return Path(self.log_path).read_text(errors="replace")

    def connect(self, timeout=10.0):
        if self.unix_path:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(self.unix_path)
            return s
        return socket.create_connection((self.host, self.port), timeout=timeout)

    def exchange(self, request, timeout=10.0):
        """Send ``request`` (bytes) on a new connection and return all the
        server sends until it closes."""
        with self.connect(timeout) as s:
            s.sendall(request)
            return recv_until_close(s)

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


def spawn(app, *args, cwd=None, env=None, bind=None, wait=True, unix=False):
    """Start the server on ``app`` with extra CLI ``args``; returns a Server."""
    port = free_port()
    unix_path = None
    if unix:
        unix_path = os.path.join(tempfile.mkdtemp(prefix="rsgi-test-"), "s.sock")
        bind = f"unix:{unix_path}"
    if bind is None:
        bind = f"127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile(prefix="rsgi-log-", suffix=".txt", delete=False)
    cmd = [server_executable(), app, "-b", bind, *args]
    full_env = dict(os.environ)
    full_env.pop("WEB_CONCURRENCY", None)
    full_env.pop("GUNICORN_CMD_ARGS", None)
    full_env.pop("RSGI_CMD_ARGS", None)
    # Settings from the environment would change what the tests expect.
    for var in ("SCRIPT_NAME", "FORWARDED_ALLOW_IPS", "RSGI_FD", "GUNICORN_FD", "RSGI_MASTER_PID", "GUNICORN_PID"):
        full_env.pop(var, None)
    full_env["PYTHONUNBUFFERED"] = "1"
    if env:
        full_env.update(env)
    proc = subprocess.Popen(
        cmd,
        cwd=str(cwd or APPS),
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    server = Server(proc, port, log.name, unix_path)
    if wait:
        ok = wait_for_unix(unix_path, proc) if unix else wait_for_tcp("127.0.0.1", port, proc)
        if not ok:
            server.stop(signal.SIGKILL)
            raise RuntimeError(f"server did not start: {cmd}\n{server.log()}")
    return server


def request_hooks_conf(tmp_path):
    """A configuration file whose ``pre_request`` / ``post_request`` hooks
    append ``pre METHOD PATH`` / ``post PATH METHOD STATUS`` lines to a
    trace file; returns (configuration path, trace path)."""
    out = tmp_path / "hooks"
    conf = tmp_path / "hooks.conf.py"
    conf.write_text(
        "def pre_request(worker, req):\n"
        "    open(%r, 'a').write('pre %%s %%s\\n' %% (req.method, req.path))\n"
        "def post_request(worker, req, environ, resp):\n"
        "    open(%r, 'a').write('post %%s %%s %%s\\n' %% (req.path, environ['REQUEST_METHOD'], resp.status))\n"
        % (str(out), str(out)))
    return conf, out


@pytest.fixture
def start_server():
    """Factory fixture: ``start_server("app_module:app", "-w", "2")``.

    Every server started through it is stopped (by PID) after the test.
    """
    started = []

    def _start(app, *args, **kwargs):
        server = spawn(app, *args, **kwargs)
        started.append(server)
        return server

    yield _start
    for server in started:
        server.stop(timeout=15)
        if not os.environ.get("RSGI_KEEP_TEST_LOGS"):
            try:
                os.unlink(server.log_path)
            except OSError:
                pass
