"""Worker supervision: request timeouts (traceback, SIGABRT, replacement),
recycling by request count and by resident memory, the pid file, daemon
mode, user/group/umask, process titles, and workers orphaned by a master
killed with SIGKILL.

Under gunicorn (RSGI_TEST_SERVER=gunicorn), which does not dump tracebacks
on a timeout, a config file with a ``worker_abort`` hook that calls
faulthandler stands in, so the log assertions are still checked against the
reference; rsgi must do it by itself.  ``--max-worker-memory`` and
``--proc-name`` are rsgi's own and skipped there.
"""

import importlib.util
import os
import pwd
import grp
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

import conftest
from _rawhttp import ResponseError, get, wait_for
from loadgen import Load
from test_master import booted_pids, pid_alive, run_cli, wait_booted
from test_signals import (APP, CONCURRENT, GUNICORN, children, has_message, ok_get, read_pid,
                          wait_gone, wait_message, wait_worker_count)
from test_signals import leftovers  # noqa: F401  (the fixture)

# What gunicorn lacks and rsgi does: dump every thread's traceback before the
# SIGABRT of a timed-out worker.  Only used to check these tests on gunicorn.
GUNICORN_ABORT_HOOK = '''
import faulthandler


def worker_abort(worker):
    faulthandler.dump_traceback(all_threads=True)
'''


def traceback_line(function):
    """A faulthandler frame line naming ``function`` in supervision_apps.py."""
    return re.compile(r'File "[^"]*supervision_apps\.py", line \d+ in %s\b' % function)


def timeout_args(tmp_path):
    if not GUNICORN:
        return []
    conf = tmp_path / "abort_hook.py"
    conf.write_text(GUNICORN_ABORT_HOOK)
    # The sync worker: gthread's heartbeat comes from its main loop, so a
    # stuck request thread never times out there.
    return ["-c", str(conf)]


# -- request timeout ---------------------------------------------------------------

@pytest.mark.parametrize("path,marker", [
    ("/sleep_forever", "sleep_forever_marker"),
    ("/spin", "spin_forever_marker"),
])
def test_timeout_dumps_traceback_aborts_and_replaces_the_worker(start_server, tmp_path,
                                                                path, marker):
    started = tmp_path / "started"
    srv = start_server(APP, "-w", "2", "--timeout", "2", "--graceful-timeout", "5",
                       *timeout_args(tmp_path), env={"STARTED_FILE": str(started)})
    assert wait_booted(srv, 2)
    outcome = {}

    def stuck_client():
        try:
            outcome["resp"] = get(srv, path, timeout=60)
        except (OSError, ResponseError) as exc:
            outcome["error"] = exc

    client = threading.Thread(target=stuck_client, daemon=True)
    client.start()
    assert wait_for(started.exists, timeout=20)
    stuck = int(started.read_text().split()[0])

    # The other worker keeps serving while this one is stuck.
    for _ in range(3):
        assert int(ok_get(srv).header("X-Worker-Pid")) != stuck

    assert wait_message(srv, r"^WORKER TIMEOUT \(pid:%d\)$" % stuck, "CRITICAL",
                        timeout=30), srv.log()
    assert wait_gone([stuck], timeout=30)
    client.join(timeout=30)
    assert not client.is_alive()
    assert "resp" not in outcome or outcome["resp"].status == 500, outcome

    assert wait_for(lambda: traceback_line(marker).search(srv.log()), timeout=10), srv.log()
    if not GUNICORN:
        # gunicorn's abort handler raises SystemExit, which its worker turns
        # into a clean exit: nothing is logged about how the worker ended.
        assert wait_message(srv, r"^Worker \(pid:%d\) was sent SIG(ABRT|KILL)!" % stuck,
                            timeout=10), srv.log()
    assert wait_booted(srv, 3), srv.log()
    assert wait_worker_count(srv.pid, 2)
    for _ in range(5):
        assert int(ok_get(srv).header("X-Worker-Pid")) != stuck
    assert srv.proc.poll() is None


def test_timeout_zero_disables_it(start_server):
    srv = start_server(APP, "-w", "1", "--timeout", "0")
    assert wait_booted(srv, 1)
    resp = get(srv, "/slow?s=3", timeout=30)
    assert resp.status == 200
    assert resp.body == b"slept"
    assert not has_message(srv, r"WORKER TIMEOUT")
    assert len(booted_pids(srv)) == 1


def test_request_shorter_than_timeout_is_left_alone(start_server):
    srv = start_server(APP, "-w", "1", "--timeout", "4")
    assert wait_booted(srv, 1)
    assert get(srv, "/slow?s=1", timeout=30).status == 200
    assert not has_message(srv, r"WORKER TIMEOUT")
    assert len(booted_pids(srv)) == 1


# -- recycling --------------------------------------------------------------------

def test_max_requests_recycles_workers_under_load(start_server):
    srv = start_server(APP, "-w", "2", "--max-requests", "50", *CONCURRENT)
    assert wait_booted(srv, 2)
    with Load(srv, threads=4, duration=60) as load:
        assert wait_booted(srv, 6, timeout=50), srv.log()
        assert load.wait_ok(400), load.summary()
    failed = load.failures()
    assert not failed, "%s\n%s" % (load.summary(), failed[:10])
    assert has_message(srv, r"^Autorestarting worker after current request\.$", "INFO")
    assert wait_worker_count(srv.pid, 2)
    assert len(load.pids()) >= 4, load.summary()


@pytest.mark.parametrize("kind", [[], ["--threads", "2"], ["-k", "gevent"]], ids=["sync", "threads", "gevent"])
def test_a_leaving_worker_runs_the_apps_atexit_callbacks(start_server, tmp_path, kind):
    # gunicorn's worker leaves by sys.exit, so the interpreter runs what the
    # app registered with atexit (an error reporter's or a span exporter's
    # flush): on a retirement and on a stop.
    marker = tmp_path / "atexit"
    srv = start_server(APP, "-w", "1", "--max-requests", "2", *kind, env={"ATEXIT_FILE": str(marker)})
    first = ok_get(srv).header("X-Worker-Pid")
    ok_get(srv)
    left = lambda: marker.read_text().split() if marker.exists() else []  # noqa: E731
    assert wait_for(lambda: first in left(), timeout=20), (left(), srv.log())
    second = ok_get(srv).header("X-Worker-Pid")
    assert second != first
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=30) == 0
    assert left() == [first, second], srv.log()


def _runs(pids):
    """Lengths of the runs of equal consecutive values in ``pids``."""
    runs = []
    for pid in pids:
        if runs and runs[-1][0] == pid:
            runs[-1][1] += 1
        else:
            runs.append([pid, 1])
    return [n for _, n in runs]


@pytest.mark.parametrize("jitter", [0, 10])
def test_max_requests_with_jitter_counts_requests_per_worker(start_server, jitter):
    n = 10
    args = ["--max-requests", str(n)]
    if jitter:
        args += ["--max-requests-jitter", str(jitter)]
    srv = start_server(APP, "-w", "1", *args)
    assert wait_booted(srv, 1)
    answered = [int(ok_get(srv, timeout=30).header("X-Worker-Pid")) for _ in range(9 * n)]
    runs = _runs(answered)[:-1]  # the last worker has not finished its share
    assert len(runs) >= 3, runs
    assert all(n <= r <= n + jitter for r in runs), runs
    if jitter:
        assert len(set(runs)) > 1, runs  # 1 chance in 11**(len(runs)-1) to be equal
    assert len(set(answered)) == len(runs) + 1  # every run is a new worker


@pytest.mark.skipif(GUNICORN, reason="--max-worker-memory is rsgi's own")
@pytest.mark.parametrize("kind", conftest.WORKER_KINDS)
def test_max_worker_memory_retires_a_growing_worker(start_server, kind):
    srv = start_server(APP, "-w", "1", "--max-worker-memory", "150", *conftest.kind_args(kind))
    assert wait_booted(srv, 1)
    first = booted_pids(srv)[0]
    rss = []
    for _ in range(20):  # 20 x 20 MiB: well past 150 MiB plus any baseline
        resp = get(srv, "/grow", timeout=30)
        assert resp.status == 200, resp  # retiring never fails a request
        rss.append(int(resp.header("X-Rss-Mib")))
        if wait_for(lambda: len(booted_pids(srv)) >= 2, timeout=0.5):
            break
    assert wait_booted(srv, 2, timeout=30), (rss, srv.log())
    assert wait_gone([first], timeout=30)
    assert max(rss) >= 150 - 20, rss
    resp = ok_get(srv)
    assert int(resp.header("X-Worker-Pid")) == booted_pids(srv)[1]
    assert srv.proc.poll() is None


# -- pid file ----------------------------------------------------------------------

def test_pidfile_holds_the_master_pid_and_is_removed_on_exit(start_server, tmp_path):
    pidfile = tmp_path / "rsgi.pid"
    srv = start_server(APP, "-w", "1", "-p", str(pidfile))
    assert wait_booted(srv, 1)
    assert pidfile.read_text().strip() == str(srv.pid)
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=30) == 0
    assert not pidfile.exists()
    assert has_message(srv, r"^Shutting down: Master$", "INFO"), srv.log()


def test_pidfile_of_a_live_process_refuses_to_start(tmp_path):
    pidfile = tmp_path / "rsgi.pid"
    live = os.getpid()  # this test process: certainly alive
    pidfile.write_text("%d\n" % live)
    port = conftest.free_port()
    env = dict(os.environ)
    env.pop("WEB_CONCURRENCY", None)
    proc = subprocess.Popen([conftest.server_executable(), APP, "-b", "127.0.0.1:%d" % port,
                             "-p", str(pidfile)], cwd=str(conftest.APPS), env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        output, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.terminate()  # it started anyway: stop it gracefully, then fail
        output, _ = proc.communicate(timeout=30)
        pytest.fail("started over the pid file of a live process:\n" + output)
    assert proc.returncode != 0, output
    assert str(live) in output, output
    assert "Traceback" not in output, output
    assert "Booting worker" not in output, output
    assert pidfile.read_text().strip() == str(live)


def test_stale_pidfile_is_replaced(start_server, tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait(timeout=10)
    pidfile = tmp_path / "rsgi.pid"
    pidfile.write_text("%d\n" % dead.pid)
    srv = start_server(APP, "-w", "1", "-p", str(pidfile))
    assert wait_booted(srv, 1)
    assert read_pid(str(pidfile)) == srv.pid


# -- daemon, user, group, umask, worker tmp dir -----------------------------------------

def test_daemon_detaches_writes_pidfile_and_stops_workers_on_winch(tmp_path, leftovers):
    pidfile = tmp_path / "d.pid"
    log = tmp_path / "d.log"
    port = conftest.free_port()
    try:
        res = run_cli(APP, "-b", "127.0.0.1:%d" % port, "-w", "2", "-D", "-p", str(pidfile),
                      "--error-logfile", str(log), timeout=30)
    except subprocess.TimeoutExpired as exc:
        res = exc  # the launcher did not return: still stop the daemon below
    master = wait_for(lambda: read_pid(str(pidfile)), timeout=30)
    if master:
        leftovers.append(master)
    assert getattr(res, "returncode", None) == 0, res
    assert master, log.read_text() if log.exists() else "no log"
    assert pid_alive(master)
    server = conftest.Server(None, port, str(log))
    assert wait_for(lambda: _listening(port), timeout=30), log.read_text()
    assert ok_get(server).status == 200
    assert wait_worker_count(master, 2)
    workers = children(master)
    leftovers.extend(workers)

    # Daemonized, WINCH stops the workers gracefully and keeps the master.
    os.kill(master, signal.SIGWINCH)
    assert wait_gone(workers, timeout=30), log.read_text()
    assert wait_worker_count(master, 0)
    time.sleep(1.0)
    assert children(master) == []
    assert pid_alive(master)

    os.kill(master, signal.SIGTERM)
    assert wait_gone([master], timeout=30)
    assert wait_for(lambda: not pidfile.exists(), timeout=10)


def _listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _ids(pid):
    """(real uid, real gid) of ``pid`` from /proc."""
    uid = gid = None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
            elif line.startswith("Gid:"):
                gid = int(line.split()[1])
    return uid, gid


def _nobody():
    try:
        return pwd.getpwnam("nobody"), grp.getgrnam("nogroup")
    except KeyError:
        return None


def _others_can_read(path):
    """True if a user with no rights but the "other" bits can reach ``path``."""
    path = os.path.abspath(path)
    need = 0o004  # the file: read
    while True:
        if os.stat(path).st_mode & need != need:
            return False
        need = 0o001  # every directory above it: search
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


@pytest.mark.skipif(os.geteuid() != 0 or _nobody() is None
                    or not _others_can_read(conftest.APPS / "supervision_apps.py"),
                    reason="needs root, the nobody user / nogroup group, and a "
                           "world-readable tests/apps")
def test_user_and_group_apply_to_workers_and_unix_socket(start_server):
    user, group = _nobody()
    srv = start_server(APP, "-w", "1", "-u", "nobody", "-g", "nogroup", unix=True)
    assert wait_booted(srv, 1)
    pid, ppid, uid, gid, _ = ok_get(srv, "/procinfo").body.decode().split()
    assert (int(uid), int(gid)) == (user.pw_uid, group.gr_gid)
    assert int(ppid) == srv.pid
    assert _ids(int(pid)) == (user.pw_uid, group.gr_gid)
    assert _ids(srv.pid) == (0, 0)  # the master keeps its privileges
    st = os.stat(srv.unix_path)
    assert (st.st_uid, st.st_gid) == (user.pw_uid, group.gr_gid)


def test_umask_applies_to_the_unix_socket(start_server):
    srv = start_server(APP, "-w", "1", "-m", "0o007", unix=True)
    assert wait_booted(srv, 1)
    assert os.stat(srv.unix_path).st_mode & 0o777 == 0o770
    assert ok_get(srv).status == 200


def test_worker_tmp_dir_is_accepted(start_server, tmp_path):
    # The value is taken into the configuration, as gunicorn takes it.
    res = run_cli(APP, "--worker-tmp-dir", str(tmp_path), "--print-config")
    assert res.returncode == 0, res.stderr
    assert re.search(r"^worker_tmp_dir\s*=\s*%s$" % re.escape(str(tmp_path)), res.stdout, re.M), res.stdout
    # A server given it boots, serves, says nothing about it, and leaves
    # the directory as it found it (rsgi's heartbeats are in shared memory;
    # gunicorn unlinks its heartbeat files as it creates them).
    srv = start_server(APP, "-w", "1", "--worker-tmp-dir", str(tmp_path))
    assert wait_booted(srv, 1)
    assert ok_get(srv).status == 200
    assert os.listdir(tmp_path) == []
    assert "worker_tmp_dir" not in srv.log() and "worker-tmp-dir" not in srv.log()


# -- process titles ---------------------------------------------------------------------

def _cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().replace(b"\0", b" ").decode(errors="replace")


needs_titles = pytest.mark.skipif(
    GUNICORN and importlib.util.find_spec("setproctitle") is None,
    reason="gunicorn sets process titles only with setproctitle installed")


@needs_titles
@pytest.mark.parametrize("flag", [None, "-n", "--name", "--proc-name"])
def test_process_titles(start_server, flag):
    if GUNICORN and flag == "--proc-name":
        pytest.skip("gunicorn spells it -n/--name only")
    args = ["-w", "2"]
    name = APP
    if flag:
        name = "titled-app"
        args += [flag, name]
    srv = start_server(APP, *args)
    assert wait_booted(srv, 2)
    assert wait_worker_count(srv.pid, 2)
    master_title = "master [%s]" % name
    assert wait_for(lambda: master_title in _cmdline(srv.pid), timeout=10), _cmdline(srv.pid)
    for worker in children(srv.pid):
        assert wait_for(lambda: "worker [%s]" % name in _cmdline(worker), timeout=10), \
            _cmdline(worker)


# -- orphans -----------------------------------------------------------------------------

def test_workers_exit_after_the_master_is_killed(start_server, tmp_path, leftovers):
    started = tmp_path / "started"
    srv = start_server(APP, "-w", "2", *CONCURRENT, env={"STARTED_FILE": str(started)})
    assert wait_booted(srv, 2)
    assert wait_worker_count(srv.pid, 2)
    workers = children(srv.pid)
    leftovers.extend(workers)
    outcome = {}

    def client():
        try:
            outcome["resp"] = get(srv, "/slow?s=2", timeout=30)
        except (OSError, ResponseError) as exc:
            outcome["error"] = exc

    t = threading.Thread(target=client, daemon=True)
    t.start()
    assert wait_for(started.exists, timeout=20)
    srv.proc.kill()
    srv.proc.wait(timeout=10)
    t.join(timeout=40)
    assert "error" not in outcome, outcome
    assert outcome["resp"].status == 200  # the in-flight request was finished
    assert wait_gone(workers, timeout=30), [p for p in workers if pid_alive(p)]
