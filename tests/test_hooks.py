"""Server hooks from a gunicorn config file, called where gunicorn calls them.

tests/apps/config/hooks.conf.py defines every hook; each appends one JSON
line to $HOOK_LOG with the process it ran in and what it saw.  The tests
drive the server (requests, TTIN/TTOU, HUP, USR2, INT/QUIT to a worker, TERM)
and check which hooks ran, in which process, in which order, and with which
arguments: ``server.pid``, ``server.cfg.*``, ``server.log``, ``worker.pid``,
``worker.ppid``, ``worker.age``, ``worker.log``, ``req.*``, ``resp.*`` and the
WSGI environ of ``post_request``.

A hook that raises is logged ("Exception in NAME hook" and the traceback) and
the server keeps running.  gunicorn itself stops on some of those (a raising
``on_starting`` ends the master), so that test is rsgi's own; the
``post_request`` case is common to both.  rsgi calls ``pre_exec`` in the old
master just before it forks the new one; gunicorn calls it in the forked
child just before exec.
"""

import json
import os
import re
import signal

import pytest

import conftest
from _rawhttp import ResponseError, get, wait_for
from test_master import booted_pids, log_records, wait_booted
from test_signals import children, read_pid, wait_gone, wait_worker_count
from test_signals import leftovers  # noqa: F401  (the fixture)

GUNICORN = conftest.SERVER_KIND == "gunicorn"
CONFIG = conftest.APPS / "config"
APP = "cfgapp:routes"


def hooked(start_server, tmp_path, *args, conf="hooks.conf.py"):
    """Start APP with ``conf``; returns (server, path of the hook log)."""
    hook_log = tmp_path / "hooks.jsonl"
    srv = start_server(APP, "-c", conf, "--graceful-timeout", "5", *args, cwd=CONFIG,
                       env={"HOOK_LOG": str(hook_log)})
    return srv, hook_log


def records(hook_log):
    try:
        text = hook_log.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def calls(hook_log, name):
    return [r for r in records(hook_log) if r["hook"] == name]


def wait_calls(hook_log, name, count=1, timeout=20, **match):
    """Wait until ``name`` was called ``count`` times with fields ``match``."""
    def found():
        got = [r for r in calls(hook_log, name)
               if all(r.get(k) == v for k, v in match.items())]
        return got if len(got) >= count else None
    return wait_for(found, timeout=timeout) or []


def index_of(hook_log, name, **match):
    for i, r in enumerate(records(hook_log)):
        if r["hook"] == name and all(r.get(k) == v for k, v in match.items()):
            return i
    raise AssertionError("no %s %r in %s" % (name, match, records(hook_log)))


def nworkers_changes(hook_log):
    return [(r["new"], r["old"]) for r in calls(hook_log, "nworkers_changed")]


def has_log(srv, pattern, level=None, pid=None):
    rx = re.compile(pattern)
    return any(rx.search(msg) and (level is None or lvl == level) and (pid is None or p == pid)
               for p, lvl, msg in log_records(srv))


# -- boot ------------------------------------------------------------------------

def test_boot_hooks_run_in_order_in_the_right_processes(start_server, tmp_path):
    srv, hook_log = hooked(start_server, tmp_path, "-w", "2", "--timeout", "17",
                           "--max-requests", "1000", "-n", "hooked", "-e", "HOOKED=1")
    master = srv.pid
    assert wait_booted(srv, 2)
    assert len(wait_calls(hook_log, "post_worker_init", 2)) == 2, records(hook_log)
    workers = booted_pids(srv)

    (starting,) = calls(hook_log, "on_starting")
    assert starting["pid"] == master
    assert starting["server_pid"] == master
    assert starting["cfg"] == {
        "workers": 2, "threads": 1, "bind": ["127.0.0.1:%d" % srv.port], "timeout": 17,
        "max_requests": 1000, "proc_name": "hooked", "raw_env": ["HOOKED=1"], "keepalive": 2,
    }
    # server.log goes to the error log, from the master.
    assert has_log(srv, r"^on_starting hook says hello$", "INFO", master), srv.log()

    (ready,) = calls(hook_log, "when_ready")
    assert ready["pid"] == master and ready["server_pid"] == master

    pre_forks = calls(hook_log, "pre_fork")
    assert len(pre_forks) == 2
    assert all(r["pid"] == master and r["server_pid"] == master for r in pre_forks)
    ages = sorted(r["age"] for r in pre_forks)
    assert len(set(ages)) == 2

    post_forks = calls(hook_log, "post_fork")
    assert sorted(r["pid"] for r in post_forks) == sorted(workers)
    for r in post_forks:
        assert r["worker_pid"] == r["pid"]
        assert r["ppid"] == master
        assert r["age"] in ages
        # worker.log goes to the error log, from the worker.
        assert has_log(srv, r"^post_fork hook in worker %d$" % r["pid"], "INFO", r["pid"])
    assert sorted(r["age"] for r in post_forks) == ages

    inits = calls(hook_log, "post_worker_init")
    assert sorted(r["pid"] for r in inits) == sorted(workers)
    for r in inits:
        assert r["worker_pid"] == r["pid"]
        assert index_of(hook_log, "post_fork", pid=r["pid"]) < \
            index_of(hook_log, "post_worker_init", pid=r["pid"])

    assert index_of(hook_log, "on_starting") < index_of(hook_log, "when_ready") < \
        index_of(hook_log, "pre_fork")
    assert not calls(hook_log, "worker_abort")


def test_server_pid_in_worker_hooks_is_the_masters(start_server, tmp_path):
    """gunicorn's post_fork/worker_exit get the arbiter, whose pid is the master's."""
    srv, hook_log = hooked(start_server, tmp_path, "-w", "1")
    (post_fork,) = wait_calls(hook_log, "post_fork")
    assert post_fork["pid"] != srv.pid
    assert post_fork["server_pid"] == srv.pid
    # Served: the worker has booted (one still booting ends at once on
    # TERM, without worker_exit: SIGNALS.md).
    assert get(srv, "/").status == 200
    srv.stop()
    (worker_exit,) = calls(hook_log, "worker_exit")
    assert worker_exit["server_pid"] == srv.pid


def test_nworkers_changed_is_called_at_startup(start_server, tmp_path):
    """gunicorn sets the worker count once at startup: (server, N, None)."""
    srv, hook_log = hooked(start_server, tmp_path, "-w", "2")
    assert wait_booted(srv, 2)
    assert nworkers_changes(hook_log)[:1] == [(2, None)]
    assert index_of(hook_log, "nworkers_changed") < index_of(hook_log, "on_starting")


# -- requests ------------------------------------------------------------------

def test_pre_and_post_request_see_the_request_response_and_environ(start_server, tmp_path):
    srv, hook_log = hooked(start_server, tmp_path, "-w", "1")
    assert wait_booted(srv, 1)
    worker = booted_pids(srv)[0]
    resp = get(srv, "/a/b?x=1&y=2", headers=[("X-Hook", "yes")])
    assert resp.status == 200
    (pre,) = wait_calls(hook_log, "pre_request")
    (post,) = wait_calls(hook_log, "post_request")
    assert pre["pid"] == pre["worker_pid"] == worker
    assert pre["method"] == "GET"
    assert pre["path"] == "/a/b"
    assert pre["query"] == "x=1&y=2"
    assert pre["uri"] == "/a/b?x=1&y=2"
    assert ["X-HOOK", "yes"] in pre["headers"]
    assert ["HOST", "127.0.0.1"] in pre["headers"]
    assert post["pid"] == post["worker_pid"] == worker
    assert post["path"] == "/a/b"
    assert post["path_info"] == "/a/b"
    assert post["seen"] == "yes"  # the environ the app saw
    assert post["status"] == "200 OK"
    assert post["status_code"] == 200
    assert index_of(hook_log, "pre_request") < index_of(hook_log, "post_request")

    assert get(srv, "/missing").status == 404
    post = wait_calls(hook_log, "post_request", 2)
    assert post[1]["status"] == "404 Not Found"
    assert post[1]["status_code"] == 404


# -- signals -------------------------------------------------------------------

def test_ttin_and_ttou_call_nworkers_changed_and_the_exit_hooks(start_server, tmp_path):
    srv, hook_log = hooked(start_server, tmp_path, "-w", "1")
    master = srv.pid
    assert wait_booted(srv, 1)
    assert wait_calls(hook_log, "post_worker_init")

    srv.proc.send_signal(signal.SIGTTIN)
    assert wait_booted(srv, 2)
    inits = wait_calls(hook_log, "post_worker_init", 2)
    assert len(inits) == 2, records(hook_log)
    assert len(calls(hook_log, "pre_fork")) == 2
    assert len(calls(hook_log, "post_fork")) == 2
    changes = [c for c in nworkers_changes(hook_log) if c[1] is not None]
    assert changes == [(2, 1)]
    assert all(r["pid"] == master for r in calls(hook_log, "nworkers_changed"))

    srv.proc.send_signal(signal.SIGTTOU)
    (child_exit,) = wait_calls(hook_log, "child_exit")
    gone = child_exit["worker_pid"]
    assert child_exit["pid"] == master and child_exit["server_pid"] == master
    assert gone in booted_pids(srv)
    changes = [c for c in nworkers_changes(hook_log) if c[1] is not None]
    assert changes == [(2, 1), (1, 2)]
    (worker_exit,) = calls(hook_log, "worker_exit")
    assert worker_exit["pid"] == worker_exit["worker_pid"] == gone
    assert index_of(hook_log, "worker_exit") < index_of(hook_log, "child_exit")
    assert wait_gone([gone])
    assert get(srv, "/").status == 200


def test_hup_calls_on_reload_then_starts_new_workers(start_server, tmp_path):
    srv, hook_log = hooked(start_server, tmp_path, "-w", "1")
    assert wait_booted(srv, 1)
    old = booted_pids(srv)[0]
    assert wait_calls(hook_log, "post_worker_init")
    srv.proc.send_signal(signal.SIGHUP)
    (reload,) = wait_calls(hook_log, "on_reload")
    assert reload["pid"] == srv.pid and reload["server_pid"] == srv.pid
    assert wait_booted(srv, 2)
    new = booted_pids(srv)[1]
    assert wait_calls(hook_log, "post_worker_init", pid=new)
    assert wait_calls(hook_log, "child_exit", worker_pid=old)
    assert calls(hook_log, "worker_exit")[0]["worker_pid"] == old
    assert index_of(hook_log, "on_reload") < index_of(hook_log, "post_fork", pid=new)
    assert get(srv, "/").status == 200


def test_term_calls_worker_exit_child_exit_and_finally_on_exit(start_server, tmp_path):
    srv, hook_log = hooked(start_server, tmp_path, "-w", "2")
    assert wait_booted(srv, 2)
    workers = booted_pids(srv)
    assert len(wait_calls(hook_log, "post_worker_init", 2)) == 2
    assert srv.stop() == 0
    assert sorted(r["pid"] for r in calls(hook_log, "worker_exit")) == sorted(workers)
    assert sorted(r["worker_pid"] for r in calls(hook_log, "child_exit")) == sorted(workers)
    last = records(hook_log)[-1]
    assert last["hook"] == "on_exit"
    assert last["pid"] == srv.pid and last["server_pid"] == srv.pid
    assert len(calls(hook_log, "on_exit")) == 1


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT])
def test_int_or_quit_to_a_worker_calls_worker_int(start_server, tmp_path, sig):
    srv, hook_log = hooked(start_server, tmp_path, "-w", "1")
    assert wait_booted(srv, 1)
    assert wait_calls(hook_log, "post_worker_init")
    worker = booted_pids(srv)[0]
    os.kill(worker, sig)
    (worker_int,) = wait_calls(hook_log, "worker_int")
    assert worker_int["pid"] == worker_int["worker_pid"] == worker
    assert wait_calls(hook_log, "child_exit", worker_pid=worker)
    assert wait_booted(srv, 2)  # replaced
    assert get(srv, "/").status == 200
    assert calls(hook_log, "worker_int") == [worker_int]


def test_usr2_calls_pre_exec(start_server, tmp_path, leftovers):  # noqa: F811
    pidfile = str(tmp_path / "app.pid")
    srv, hook_log = hooked(start_server, tmp_path, "-w", "1", "-p", pidfile)
    assert wait_booted(srv, 1)
    old_workers = children(srv.pid)
    srv.proc.send_signal(signal.SIGUSR2)
    new_master = wait_for(lambda: read_pid(pidfile + ".2"), timeout=30)
    leftovers.extend([p for p in children(srv.pid) if p not in old_workers])
    if new_master:
        leftovers.append(new_master)
    assert new_master, srv.log()
    (pre_exec,) = wait_calls(hook_log, "pre_exec")
    assert pre_exec["server_pid"] == srv.pid
    # rsgi: in the old master, just before the fork; gunicorn: in the child.
    assert pre_exec["pid"] == (new_master if GUNICORN else srv.pid)
    # The new master reads the same config file and runs its own boot hooks.
    assert wait_calls(hook_log, "on_starting", pid=new_master)
    assert wait_worker_count(new_master, 1)
    os.kill(new_master, signal.SIGTERM)
    assert wait_calls(hook_log, "on_exit", pid=new_master, timeout=30)


def test_worker_abort_is_called_when_a_request_times_out(start_server, tmp_path):
    srv, hook_log = hooked(start_server, tmp_path, "-w", "1", "--timeout", "2")
    assert wait_booted(srv, 1)
    worker = booted_pids(srv)[0]
    with pytest.raises((OSError, ResponseError)):
        resp = get(srv, "/hang", timeout=30)
        if resp.status == 500:
            raise ResponseError("500")
    (abort,) = wait_calls(hook_log, "worker_abort", timeout=30)
    assert abort["pid"] == abort["worker_pid"] == worker
    assert wait_booted(srv, 2)  # replaced
    assert get(srv, "/").status == 200


# -- hooks that raise ------------------------------------------------------------

def assert_hook_exception_logged(srv, name):
    """``Exception in NAME hook`` at ERROR, then the traceback with the error."""
    text = srv.log()
    m = re.search(r"\[ERROR\] Exception in %s hook\n" % name, text)
    assert m, "no 'Exception in %s hook' in:\n%s" % (name, text)
    after = text[m.end():]
    assert after.startswith("Traceback (most recent call last):"), after[:300]
    assert "RuntimeError: %s failed on purpose" % name in after.split("\n[")[0], after[:600]


@pytest.mark.skipif(GUNICORN, reason="gunicorn stops when on_starting or post_fork raises")
def test_raising_hooks_are_logged_and_the_server_keeps_running(start_server, tmp_path):
    srv, _ = hooked(start_server, tmp_path, "-w", "1", conf="raising_hooks.conf.py")
    assert wait_booted(srv, 1)
    for _ in range(2):
        resp = get(srv, "/")
        assert resp.status in (200, 500)
    srv.proc.send_signal(signal.SIGTTIN)
    assert wait_booted(srv, 2)
    srv.proc.send_signal(signal.SIGTTOU)
    assert wait_worker_count(srv.pid, 1)
    srv.proc.send_signal(signal.SIGHUP)
    assert wait_booted(srv, 3)
    assert wait_for(lambda: get(srv, "/").status in (200, 500))
    assert srv.proc.poll() is None
    assert srv.stop() == 0
    for name in ("on_starting", "when_ready", "pre_fork", "post_fork", "post_worker_init",
                 "pre_request", "post_request", "nworkers_changed", "on_reload",
                 "worker_exit", "child_exit", "on_exit"):
        assert_hook_exception_logged(srv, name)


def test_raising_post_request_is_logged_and_the_response_is_sent(start_server, tmp_path):
    srv, _ = hooked(start_server, tmp_path, "-w", "1", conf="post_request_raises.conf.py")
    for _ in range(2):
        resp = get(srv, "/")
        assert resp.status == 200
        assert resp.body == b"hello world"
    assert wait_for(lambda: "Exception in post_request hook" in srv.log()), srv.log()
    assert_hook_exception_logged(srv, "post_request")
    assert srv.proc.poll() is None
