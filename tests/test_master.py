"""The master process and the command line: worker boot and respawn, signals,
startup failures and their exit codes, and the ways to name the app."""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

import conftest
from _rawhttp import get, wait_for

GUNICORN = conftest.SERVER_KIND == "gunicorn"
NAME = "gunicorn" if GUNICORN else "rsgi"

# gunicorn's exit codes (arbiter.py), which rsgi keeps.
WORKER_BOOT_ERROR = 3  # the worker died while booting: the app module raised on import
APP_LOAD_ERROR = 4     # the module imported but the app could not be found / built

LOG_LINE = re.compile(
    r"^\[(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4})\] \[(\d+)\] \[([A-Z]+)\] (.*)$")


def log_records(server):
    """Parsed error-log lines: (pid, level, message)."""
    out = []
    for line in server.log().splitlines():
        m = LOG_LINE.match(line)
        if m:
            out.append((int(m.group(2)), m.group(3), m.group(4)))
    return out


def booted_pids(server):
    pids = []
    for _, level, msg in log_records(server):
        m = re.fullmatch(r"Booting worker with pid: (\d+)", msg)
        if m:
            assert level == "INFO"
            pids.append(int(m.group(1)))
    return pids


def wait_booted(server, count, timeout=30):
    return wait_for(lambda: len(booted_pids(server)) >= count, timeout=timeout)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still "exists"; check its state when /proc is available.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def run_cli(*args, cwd=None, env=None, timeout=60):
    """Run the server CLI to completion (it is expected to exit by itself)."""
    full_env = dict(os.environ)
    full_env.pop("WEB_CONCURRENCY", None)
    full_env.update(env or {})
    return subprocess.run(
        [conftest.server_executable(), *args],
        cwd=str(cwd or conftest.APPS), env=full_env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)


def spawn_argv(argv, port, cwd=None, env=None):
    """Like conftest.spawn, but with a complete, custom argv."""
    log = tempfile.NamedTemporaryFile(prefix="rsgi-log-", suffix=".txt", delete=False)
    full_env = dict(os.environ)
    for key in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "RSGI_CMD_ARGS"):
        full_env.pop(key, None)
    full_env["PYTHONUNBUFFERED"] = "1"
    full_env.update(env or {})
    proc = subprocess.Popen(argv, cwd=str(cwd or conftest.APPS), env=full_env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = conftest.Server(proc, port, log.name)
    if not conftest.wait_for_tcp("127.0.0.1", port, proc):
        server.stop(signal.SIGKILL)
        raise RuntimeError("server did not start: %s\n%s" % (argv, server.log()))
    return server


@pytest.fixture
def custom_server():
    started = []

    def _start(argv, port, **kwargs):
        server = spawn_argv(argv, port, **kwargs)
        started.append(server)
        return server

    yield _start
    for server in started:
        server.stop(timeout=15)


# -- boot and log format ---------------------------------------------------

def test_two_workers_boot_and_log_format(start_server):
    srv = start_server("basic:app", "-w", "2")
    assert wait_booted(srv, 2)
    assert get(srv, "/").body == b"app"
    records = log_records(srv)
    messages = [msg for _, _, msg in records]
    assert any(re.fullmatch(r"Starting %s \S+" % NAME, m) for m in messages), messages
    listening = "Listening at: http://127.0.0.1:%d (%d)" % (srv.port, srv.pid)
    assert listening in messages, messages
    pids = booted_pids(srv)
    assert len(pids) == 2
    assert len(set(pids)) == 2
    assert srv.pid not in pids
    for pid in pids:
        assert pid_alive(pid)
    # Each "Booting worker" line is logged by the worker itself (gunicorn) or
    # by the master; either way the [pid] field is a real process of ours.
    for pid, level, msg in records:
        if msg.startswith("Booting worker"):
            assert pid in (srv.pid, int(msg.rsplit(" ", 1)[1]))


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_the_master_tells_systemd_it_is_ready(start_server, tmp_path, abstract):
    # A `Type=notify` unit waits for READY=1 on $NOTIFY_SOCKET (gunicorn's
    # arbiter sends it once it listens); `@name` is an abstract socket.
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = "rsgi-test-notify-%d-%d" % (os.getpid(), time.monotonic_ns())
        listener.bind("\0" + name)
        addr = "@" + name
    else:
        addr = str(tmp_path / "notify")
        listener.bind(addr)
    listener.settimeout(20)
    with listener:
        srv = start_server("basic:app", env={"NOTIFY_SOCKET": addr})
        state = listener.recv(4096).decode()
        assert state.split("\n")[0] == "READY=1", state
        assert get(srv, "/").body == b"app"


def test_killed_worker_is_replaced(start_server):
    srv = start_server("basic:app", "-w", "2")
    assert wait_booted(srv, 2)
    victim = booted_pids(srv)[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_booted(srv, 3), srv.log()
    new = booted_pids(srv)[2]
    assert new != victim
    assert wait_for(lambda: not pid_alive(victim), timeout=10)
    for _ in range(10):
        resp = get(srv, "/")
        assert resp.status == 200
        assert int(resp.header("X-Worker-Pid")) != victim
    assert srv.proc.poll() is None


def test_sigterm_finishes_inflight_request_then_exits_zero(start_server, tmp_path):
    started = tmp_path / "started"
    srv = start_server("basic:slow", "-w", "1", "--graceful-timeout", "30",
                       env={"SLOW_STARTED": str(started)})
    result = {}

    def client():
        try:
            result["resp"] = get(srv, "/?2", timeout=30)
        except Exception as exc:  # reported below
            result["error"] = exc

    thread = threading.Thread(target=client)
    thread.start()
    assert wait_for(started.exists, timeout=20)
    srv.proc.send_signal(signal.SIGTERM)
    thread.join(timeout=40)
    assert not thread.is_alive()
    assert "error" not in result, result
    assert result["resp"].status == 200
    assert result["resp"].body == b"slept"
    assert srv.proc.wait(timeout=40) == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT])
def test_quick_shutdown_signals(start_server, sig):
    srv = start_server("basic:app", "-w", "2")
    assert wait_booted(srv, 2)
    workers = booted_pids(srv)
    srv.proc.send_signal(sig)
    assert srv.proc.wait(timeout=15) == 0
    assert wait_for(lambda: not any(pid_alive(p) for p in workers), timeout=10)


def test_sigterm_idle_exits_zero_and_stops_workers(start_server):
    srv = start_server("basic:app", "-w", "2")
    assert wait_booted(srv, 2)
    workers = booted_pids(srv)
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=30) == 0
    assert wait_for(lambda: not any(pid_alive(p) for p in workers), timeout=10)


# -- startup failures ----------------------------------------------------------

def _port():
    return str(conftest.free_port())


@pytest.mark.parametrize("workers", ["1", "3"])
def test_app_raising_at_import_exits_without_respawn_loop(workers):
    res = run_cli("fail_import:app", "-b", "127.0.0.1:" + _port(), "-w", workers)
    output = res.stdout + res.stderr
    if GUNICORN and workers != "1":
        # gunicorn races here: a second dead worker is reaped inside halt(),
        # HaltServer escapes and the master exits 1 with a traceback.
        assert res.returncode != 0, output
    else:
        assert res.returncode == WORKER_BOOT_ERROR, output
    assert "this module raises at import time" in output
    assert output.count("Booting worker") <= int(workers), output


def test_missing_module_exits(tmp_path):
    res = run_cli("no_such_module_anywhere:app", "-b", "127.0.0.1:" + _port())
    output = res.stdout + res.stderr
    assert res.returncode == WORKER_BOOT_ERROR, output
    assert "no_such_module_anywhere" in output


@pytest.mark.parametrize("spec", ["basic:no_such_attr", "basic:not_callable",
                                  "basic:make_app(", "basic:make_app(len)"])
def test_bad_app_attribute_exits_app_load_error(spec):
    res = run_cli(spec, "-b", "127.0.0.1:" + _port())
    output = res.stdout + res.stderr
    assert res.returncode == APP_LOAD_ERROR, output
    assert output.count("Booting worker") <= 1


def test_bind_port_in_use_exits_1():
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        res = run_cli("basic:app", "-b", "127.0.0.1:%d" % port)
    finally:
        holder.close()
    output = res.stdout + res.stderr
    assert res.returncode == 1, output
    assert str(port) in output
    assert "Traceback" not in output


def test_bind_bad_address_exits_1():
    res = run_cli("basic:app", "-b", "999.1.1.1:80")
    output = res.stdout + res.stderr
    assert res.returncode == 1, output
    assert "999.1.1.1" in output
    assert "Traceback" not in output


def test_unknown_option_exits_2():
    res = run_cli("basic:app", "--definitely-not-an-option")
    assert res.returncode == 2
    assert "--definitely-not-an-option" in res.stderr


def test_version():
    res = run_cli("--version")
    assert res.returncode == 0
    out = res.stdout + res.stderr
    assert NAME in out
    assert re.search(r"\d+\.\d+", out), out


def test_help_lists_bind():
    res = run_cli("--help")
    assert res.returncode == 0
    assert "-b" in res.stdout
    assert "--bind" in res.stdout
    assert "--workers" in res.stdout


# -- naming the app ----------------------------------------------------------

def test_options_after_app_argument(start_server):
    srv = start_server("basic:app", "-w", "2")  # spawn puts every option after APP
    assert wait_booted(srv, 2)
    assert get(srv, "/").body == b"app"


def test_options_before_app_argument(custom_server):
    port = conftest.free_port()
    srv = custom_server([conftest.server_executable(), "-w", "2", "-b", "127.0.0.1:%d" % port,
                         "basic:app"], port)
    assert wait_booted(srv, 2)
    assert get(srv, "/").body == b"app"


def test_module_alone_means_application(start_server):
    srv = start_server("basic")
    assert get(srv, "/").body == b"application"


def test_factory_without_arguments(start_server):
    srv = start_server("basic:make_app()")
    assert get(srv, "/").body == b"factory:0"


def test_factory_with_literal_arguments(start_server):
    srv = start_server('basic:make_app("hi", n=2)')
    assert get(srv, "/").body == b"hi:2"


def test_python_dash_m(custom_server):
    port = conftest.free_port()
    srv = custom_server([sys.executable, "-m", NAME, "basic:app", "-b", "127.0.0.1:%d" % port],
                        port)
    assert get(srv, "/").body == b"app"


def test_web_concurrency_sets_worker_count(start_server):
    srv = start_server("basic:app", env={"WEB_CONCURRENCY": "3"})
    assert wait_booted(srv, 3)
    assert get(srv, "/").status == 200
    assert len(booted_pids(srv)) == 3


def test_workers_flag_beats_web_concurrency(start_server):
    srv = start_server("basic:app", "-w", "1", env={"WEB_CONCURRENCY": "3"})
    assert wait_booted(srv, 1)
    assert get(srv, "/").status == 200
    assert len(booted_pids(srv)) == 1


APP_SOURCE = '''
def app(environ, start_response):
    body = b"%s"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''


def test_chdir(start_server, tmp_path):
    (tmp_path / "chdir_target.py").write_text(APP_SOURCE % "from chdir")
    srv = start_server("chdir_target:app", "--chdir", str(tmp_path))
    assert get(srv, "/").body == b"from chdir"


def test_chdir_relative_to_cwd(start_server, tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "chdir_rel_target.py").write_text(APP_SOURCE % "from relative chdir")
    srv = start_server("chdir_rel_target:app", "--chdir", "sub", cwd=tmp_path)
    assert get(srv, "/").body == b"from relative chdir"


def test_pythonpath(start_server, tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "pythonpath_target.py").write_text(APP_SOURCE % "from pythonpath")
    srv = start_server("pythonpath_target:app", "--pythonpath", str(extra))
    assert get(srv, "/").body == b"from pythonpath"
