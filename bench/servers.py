"""The servers under test, how to start each with one worker, and how to watch and stop them.

Runs in the harness process. A server is started pinned to its core, in its own
session, with output to a log file; it is measured through /proc (CPU ticks
and resident memory of its whole process tree) and stopped by PID: TERM to
the root, then KILL to whatever of its tree is left.
"""

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bootstrap import BENCH, VENV, venv_bin, venv_python
from common import free_port, process_tree, stat_fields as _stat_fields, user_system_ticks  # noqa: F401 (re-exported)

APPS_DIR = BENCH / "apps"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass(frozen=True)
class App:
    """One benchmark app: a WSGI target, the path wrk requests, and a POST body size."""

    name: str
    target: str  # module:callable, importable from bench/apps
    needs: str | None = None  # distribution the app imports (Flask, Django)
    post_bytes: int = 0  # > 0: wrk sends a POST with this many body bytes


APPS = {
    "hello": App("hello", "plain:hello"),
    "10k": App("10k", "plain:body_10k"),
    "1m": App("1m", "plain:body_1m"),
    "echo": App("echo", "plain:echo", post_bytes=10 * 1024),
    "flask": App("flask", "flask_hello:app", needs="Flask"),
    "flask-json": App("flask-json", "flask_json:app", needs="Flask"),
    "django": App("django", "djangoproj.wsgi:application", needs="Django"),
}


def _rsgi(app, port, workers=1, threads=1):
    return [venv_bin("rsgi"), app.target, "-w", str(workers), "--threads", str(threads),
            "-b", f"127.0.0.1:{port}", "--worker-connections", "1000"]


def _rsgi_w2(app, port):
    return _rsgi(app, port, workers=2)


def _rsgi_threads2(app, port):
    return _rsgi(app, port, threads=2)


def _gunicorn_sync(app, port):
    return [venv_bin("gunicorn"), "-w", "1", "-k", "sync", "-b", f"127.0.0.1:{port}", app.target]


def _gunicorn_gthread(app, port):
    return [venv_bin("gunicorn"), "-w", "1", "-k", "gthread", "--threads", "4",
            "-b", f"127.0.0.1:{port}", app.target]


def _granian(app, port):
    return [venv_bin("granian"), "--interface", "wsgi", "--workers", "1",
            "--host", "127.0.0.1", "--port", str(port), app.target]


def _bjoern(app, port):
    return [venv_python(), BENCH / "serve_bjoern.py", app.target, "127.0.0.1", str(port)]


def _uwsgi_common(app):
    # A master plus one worker with one thread: the same shape as gunicorn -w 1.
    return ["--module", app.target, "--home", VENV, "--pythonpath", APPS_DIR,
            "--master", "--processes", "1", "--threads", "1",
            "--disable-logging", "--die-on-term", "--need-app"]


def _uwsgi(app, port):
    # --http-socket answers HTTP/1.1 yet closes the connection after every
    # response without saying so (--http-keepalive is an option of the
    # separate --http router and changes nothing here), which wrk would count
    # as a read error per request; the added header makes the close explicit,
    # as gunicorn's sync worker does.
    return [venv_bin("uwsgi"), "--http-socket", f"127.0.0.1:{port}",
            "--add-header", "Connection: close", *_uwsgi_common(app)]


def _uwsgi_http11(app, port):
    # uWSGI's keep-alive listener. With one worker thread it serves one
    # connection until that client goes away, so the other 63 wait: a high
    # req/s from a single connection, and a probe that is not answered.
    return [venv_bin("uwsgi"), "--http11-socket", f"127.0.0.1:{port}", *_uwsgi_common(app)]


def _waitress(app, port):
    return [venv_bin("waitress-serve"), f"--listen=127.0.0.1:{port}", "--threads=4", app.target]


@dataclass(frozen=True)
class Server:
    """A server under test: its name in the results and the distribution it needs."""

    name: str
    needs: str
    build: object  # (App, port) -> argv
    note: str
    default: bool = True  # measured unless --servers names the set
    env: tuple = ()  # extra environment variables, as (name, value) pairs


SERVERS = {
    s.name: s
    for s in [
        Server("rsgi", "rsgi", _rsgi, "-w 1 (threads 1)"),
        Server("rsgi-handoff", "rsgi", _rsgi,
               "-w 1, RSGI_INLINE=0: every request handed to the executor thread",
               default=False, env=(("RSGI_INLINE", "0"),)),
        # Opt-in shapes beside the one-worker one (on the same pinned core,
        # so they show what a second worker or app thread costs or gains
        # there, not a second core's worth).
        Server("rsgi-w2", "rsgi", _rsgi_w2, "-w 2 (threads 1), both workers on the server core",
               default=False),
        Server("rsgi-threads2", "rsgi", _rsgi_threads2,
               "-w 1 --threads 2: every request handed to one of two executor threads", default=False),
        Server("gunicorn-sync", "gunicorn", _gunicorn_sync, "-w 1 -k sync"),
        Server("gunicorn-gthread", "gunicorn", _gunicorn_gthread, "-w 1 -k gthread --threads 4"),
        Server("granian", "granian", _granian, "--interface wsgi --workers 1"),
        Server("bjoern", "bjoern", _bjoern, "bjoern.run, one process"),
        Server("uwsgi", "uWSGI", _uwsgi, "--http-socket --master --processes 1 --threads 1"),
        Server("uwsgi-http11", "uWSGI", _uwsgi_http11,
               "--http11-socket (keep-alive) --master --processes 1 --threads 1", default=False),
        Server("waitress", "waitress", _waitress, "--threads=4, one process"),
    ]
}


def become_subreaper():
    """Make orphaned server processes (a worker outliving its master) our children.

    Called once in the harness. Without it they would go to PID 1, which in some
    sandboxes never reaps them; with it, reap_orphans() collects them.
    """
    try:
        import ctypes

        PR_SET_CHILD_SUBREAPER = 36
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_orphans():
    """Collect exited children that no Popen waits for (called after a server stops)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# --- /proc ------------------------------------------------------------------


def cpu_split(pids):
    """(user, system) ticks: utime + cutime and stime + cstime, summed over the PIDs still alive."""
    return user_system_ticks(pids, children=True)


def cpu_ticks(pids):
    """utime + stime + cutime + cstime, summed over the PIDs still alive."""
    return sum(cpu_split(pids))


def start_time(pid):
    """The process's start time in ticks since boot (tells a reused PID apart), or None."""
    try:
        return int(_stat_fields(pid)[19])
    except (OSError, ValueError, IndexError):
        return None


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# --- one running server -------------------------------------------------------


class ServerError(Exception):
    """The server did not start or did not answer; the message says why."""


class RunningServer:
    """A started server process (tree). Use as a context manager: it always stops."""

    def __init__(self, server, app, log_path, core=None, env=None):
        self.server, self.app = server, app
        self.port = free_port()
        argv = [str(a) for a in server.build(app, self.port)]
        if core is not None:
            argv = ["taskset", "-c", str(core), *argv]
        self.argv = argv
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self._log.write(f"\n==== {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
        self._log.flush()
        if server.env:
            env = {**(env if env is not None else os.environ), **dict(server.env)}
        self.proc = subprocess.Popen(
            argv, cwd=APPS_DIR, env=env, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.pid = self.proc.pid  # taskset execs the server, so this is the server's PID

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def wait_ready(self, http_get, timeout=60.0):
        """Poll until GET / answers 200; raise ServerError if it exits or never answers."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"exited with status {self.proc.returncode} before answering "
                                  f"(log: {self.log_path.name}): {self.log_tail()}")
            try:
                status, _ = http_get(self.port, "/", timeout=2.0)
                if status == 200:
                    return
                last = f"status {status}"
            except OSError as e:
                last = str(e)
            time.sleep(0.1)
        raise ServerError(f"not ready after {timeout:.0f} s ({last})")

    def tree(self):
        return process_tree(self.pid)

    def cpu_ticks(self):
        return cpu_ticks(self.tree())

    def cpu_split(self):
        return cpu_split(self.tree())

    def memory(self):
        """(worker RSS KiB, master RSS KiB or None): with children, the root is the master."""
        tree = self.tree()
        if len(tree) == 1:
            return rss_kib(self.pid), None
        workers = [rss_kib(p) for p in tree[1:]]
        return sum(w for w in workers if w), rss_kib(self.pid)

    def log_tail(self, lines=5):
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def stop(self, grace=10.0):
        """TERM the root, wait, then KILL every process of the tree still alive."""
        if self._log.closed:
            return
        pids = [(p, start_time(p)) for p in self.tree()] if self.proc.poll() is None else []
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        for pid, started in pids:
            if started is None or start_time(pid) != started:
                continue  # gone (or the PID now belongs to someone else)
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()
        time.sleep(0.2)  # let killed orphans exit before they are reaped
        reap_orphans()
