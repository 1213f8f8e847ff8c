"""Master and worker signals, as gunicorn's arbiter handles them.

Master: HUP reload (new workers re-import the app, old ones stop gracefully),
TTIN/TTOU one worker more/fewer, USR1 reopen the log files, USR2 re-exec a new
master on the same sockets (and its promotion when the old one stops), WINCH
ignored unless daemonized, TERM graceful stop bounded by --graceful-timeout.
Worker: TERM graceful, QUIT/INT fast, USR1 reopen logs.  (INT/QUIT/TERM of an
idle master are in test_master.py.)

The second half repeats kill -9 of a worker, HUP, TTIN/TTOU and a full USR2
upgrade under steady keep-alive load (tests/loadgen.py) and requires zero
failed requests, except those in flight inside a worker the test killed.

Workers are counted from the master's live children (``ps --ppid``) and from
the "Booting worker with pid: N" log lines.  Every process a test starts
outside conftest (a re-exec'd master, its workers) is stopped by PID.
"""

import os
import re
import signal
import subprocess
import threading
import time

import pytest

import conftest
from _rawhttp import get, wait_for
from loadgen import Load
from test_master import booted_pids, log_records, pid_alive, wait_booted

GUNICORN = conftest.SERVER_KIND == "gunicorn"
APP = "supervision_apps:router"
# gunicorn's sync worker serves one connection at a time and closes it after
# every response; its gthread worker keeps alive and serves concurrently.
CONCURRENT = ["-k", "gthread", "--threads", "4"] if GUNICORN else []
LOAD_THREADS = 4


# -- helpers shared with test_supervision.py -----------------------------------

def children(pid):
    """Live (non-zombie) child processes of ``pid``, from ``ps --ppid``."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, timeout=10).stdout
    return sorted(p for p in (int(x) for x in out.split()) if pid_alive(p))


def workers_of(master, exclude=()):
    """The master's live children other than ``exclude`` (e.g. a new master)."""
    return [p for p in children(master) if p not in exclude]


def wait_worker_count(master, n, timeout=30, exclude=()):
    return wait_for(lambda: len(workers_of(master, exclude)) == n, timeout=timeout)


def wait_gone(pids, timeout=30):
    return wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=timeout)


def parent_of(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def messages(text):
    """Messages of the error-log lines in ``text``: [(pid, level, message)]."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^\[[^]]+\] \[(\d+)\] \[([A-Z]+)\] (.*)$", line)
        if m:
            out.append((int(m.group(1)), m.group(2), m.group(3)))
    return out


def has_message(server, pattern, level=None):
    rx = re.compile(pattern)
    return any(rx.search(msg) and (level is None or lvl == level)
               for _, lvl, msg in log_records(server))


def wait_message(server, pattern, level=None, timeout=30):
    return wait_for(lambda: has_message(server, pattern, level), timeout=timeout)


def kill_tree(pids, timeout=10):
    """Stop ``pids`` and their children by PID: TERM, then KILL what is left."""
    everyone = []
    for pid in pids:
        if pid and pid_alive(pid):
            everyone += [pid] + children(pid)
    for pid in everyone:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    if not wait_gone(everyone, timeout=timeout):
        for pid in everyone:
            if pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        wait_gone(everyone, timeout=5)


@pytest.fixture
def leftovers():
    """A list the test fills with PIDs it did not start through conftest
    (a re-exec'd master, orphaned workers); they and their children are
    stopped by PID at teardown."""
    pids = []
    yield pids
    kill_tree(pids)


def ok_get(server, path="/", timeout=10.0):
    resp = get(server, path, timeout=timeout)
    assert resp.status == 200, resp
    return resp


# -- TTIN / TTOU ---------------------------------------------------------------

def test_ttin_adds_a_worker_and_ttou_removes_one_but_never_the_last(start_server):
    srv = start_server(APP, "-w", "2")
    assert wait_booted(srv, 2)
    assert wait_worker_count(srv.pid, 2)

    srv.proc.send_signal(signal.SIGTTIN)
    assert wait_booted(srv, 3), srv.log()
    assert wait_worker_count(srv.pid, 3), children(srv.pid)
    assert has_message(srv, r"^Handling signal: ttin$", "INFO")
    assert booted_pids(srv)[2] in children(srv.pid)

    for expected in (2, 1):
        before = children(srv.pid)
        srv.proc.send_signal(signal.SIGTTOU)
        assert wait_worker_count(srv.pid, expected), children(srv.pid)
        gone = set(before) - set(children(srv.pid))
        assert len(gone) == 1
        assert wait_gone(gone, timeout=30)

    # One worker left: TTOU is handled but does not stop it. Shown by a TTIN
    # handled after it: the count goes to two with the last worker still
    # there (had TTOU taken the count to zero, the master would have told
    # that worker to stop before forking the TTIN one, and the count would
    # end at one).
    last = children(srv.pid)
    srv.proc.send_signal(signal.SIGTTOU)
    assert wait_for(lambda: sum(1 for _, _, m in log_records(srv)
                                if m == "Handling signal: ttou") == 3, timeout=15), srv.log()
    srv.proc.send_signal(signal.SIGTTIN)
    assert wait_booted(srv, 4), srv.log()
    assert wait_worker_count(srv.pid, 2), children(srv.pid)
    assert set(last) < set(children(srv.pid))
    assert "Worker exiting (pid: %d)" % last[0] not in srv.log()
    assert ok_get(srv).status == 200
    assert booted_pids(srv)[3] in children(srv.pid)  # only the TTIN worker was added


# -- HUP -----------------------------------------------------------------------

def test_hup_starts_new_workers_with_the_edited_app(start_server, tmp_path):
    version_file = tmp_path / "VERSION"
    version_file.write_text("one\n")
    srv = start_server("supervision_apps:version", "-w", "2",
                       env={"VERSION_FILE": str(version_file)})
    assert wait_booted(srv, 2)
    old = booted_pids(srv)
    assert ok_get(srv).body == b"one"

    version_file.write_text("two\n")
    srv.proc.send_signal(signal.SIGHUP)
    assert wait_booted(srv, 4), srv.log()
    new = booted_pids(srv)[2:]
    assert not set(new) & set(old)
    assert wait_gone(old, timeout=30), [p for p in old if pid_alive(p)]
    assert wait_worker_count(srv.pid, 2)
    assert sorted(new) == children(srv.pid)
    assert has_message(srv, r"^Handling signal: hup$", "INFO")
    for _ in range(10):
        resp = ok_get(srv)
        assert resp.body == b"two"
        assert int(resp.header("X-Worker-Pid")) in new
    assert srv.proc.poll() is None


# -- USR1 ----------------------------------------------------------------------

def _log_marker_until_in(server, path, prefix, timeout=20):
    """Write markers through wsgi.errors until one lands in ``path``."""
    deadline = time.monotonic() + timeout
    i = 0
    while time.monotonic() < deadline:
        i += 1
        marker = "%s-%d" % (prefix, i)
        ok_get(server, "/errors?msg=" + marker)
        time.sleep(0.1)
        if os.path.exists(path) and marker in open(path, errors="replace").read():
            return marker
    return None


def test_usr1_reopens_the_error_log_in_master_and_workers(start_server, tmp_path):
    log = tmp_path / "error.log"
    srv = start_server(APP, "-w", "1", "--error-logfile", str(log))
    assert wait_for(lambda: log.exists() and "Booting worker" in log.read_text(), timeout=30)
    worker = children(srv.pid)[0]
    rotated = tmp_path / "error.log.1"
    os.rename(log, rotated)

    srv.proc.send_signal(signal.SIGUSR1)
    # The worker reopens: what it writes reaches a new file at the old path.
    assert _log_marker_until_in(srv, str(log), "after-usr1"), rotated.read_text()
    # The master reopens too: a worker it forks now logs to the new file.
    srv.proc.send_signal(signal.SIGTTIN)
    assert wait_for(lambda: "Booting worker" in log.read_text(), timeout=30), log.read_text()
    assert wait_worker_count(srv.pid, 2)

    old_text = rotated.read_text()
    assert "Booting worker with pid: %d" % worker in old_text
    assert "Handling signal: usr1" in old_text + log.read_text()
    new = messages(log.read_text())
    assert any(m.startswith("Booting worker with pid: ") and int(m.rsplit(" ", 1)[1]) != worker
               for _, _, m in new), new
    assert srv.proc.poll() is None


def test_worker_usr1_reopens_its_log(start_server, tmp_path):
    log = tmp_path / "error.log"
    srv = start_server(APP, "-w", "1", "--error-logfile", str(log))
    assert wait_for(lambda: log.exists() and "Booting worker" in log.read_text(), timeout=30)
    worker = children(srv.pid)[0]
    marker = _log_marker_until_in(srv, str(log), "before")
    assert marker
    rotated = tmp_path / "error.log.1"
    os.rename(log, rotated)
    os.kill(worker, signal.SIGUSR1)
    assert _log_marker_until_in(srv, str(log), "after-worker-usr1"), rotated.read_text()
    assert children(srv.pid) == [worker]  # reopening does not restart it


# -- WINCH -----------------------------------------------------------------------

def test_winch_is_ignored_when_not_daemonized(start_server):
    srv = start_server(APP, "-w", "2", "--log-level", "debug")
    assert wait_booted(srv, 2)
    assert wait_worker_count(srv.pid, 2)
    before = children(srv.pid)
    srv.proc.send_signal(signal.SIGWINCH)
    assert wait_message(srv, r"^SIGWINCH ignored\. Not daemonized$", "DEBUG",
                        timeout=15), srv.log()
    # A TTIN handled after it adds a third worker to the same two (had
    # WINCH stopped the workers, the count would end at one).
    srv.proc.send_signal(signal.SIGTTIN)
    assert wait_booted(srv, 3), srv.log()
    assert wait_worker_count(srv.pid, 3), children(srv.pid)
    assert set(before) < set(children(srv.pid))
    assert not any("Worker exiting (pid: %d)" % pid in srv.log() for pid in before)
    assert ok_get(srv).status == 200


# -- TERM bounded by --graceful-timeout ---------------------------------------------

def test_term_kills_requests_that_outlive_the_graceful_timeout(start_server, tmp_path):
    started = tmp_path / "started"
    srv = start_server(APP, "-w", "1", "--graceful-timeout", "2", *CONCURRENT,
                       env={"STARTED_FILE": str(started)})
    assert wait_booted(srv, 1)
    worker = children(srv.pid)[0]
    outcome = {}

    def client():
        try:
            outcome["resp"] = get(srv, "/slow?s=60", timeout=40)
        except Exception as exc:  # the connection is expected to close
            outcome["error"] = exc

    t = threading.Thread(target=client, daemon=True)
    t.start()
    assert wait_for(started.exists, timeout=20)
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=30) == 0
    t.join(timeout=30)
    assert not t.is_alive()
    assert "resp" not in outcome or outcome["resp"].status != 200, outcome
    assert not pid_alive(worker)
    assert has_message(srv, r"^Shutting down: Master$", "INFO"), srv.log()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGQUIT])
def test_a_stop_signal_ends_a_worker_still_importing_the_app_at_once(start_server, tmp_path, sig):
    if GUNICORN and sig == signal.SIGTERM:
        pytest.skip("gunicorn's worker notes TERM and goes on importing the app")
    booting = tmp_path / "booting"
    # The import would take 60 s and the graceful timeout 90 s; the worker
    # has no request to finish, so the master stops long before either.
    srv = start_server("slow_import:app", "-w", "1", "--graceful-timeout", "90",
                       env={"BOOTING_FILE": str(booting), "IMPORT_SECONDS": "60"})
    assert wait_for(lambda: booting.exists() and booting.read_text(), timeout=30), srv.log()
    worker = int(booting.read_text())
    assert worker in children(srv.pid)
    srv.proc.send_signal(sig)
    assert srv.proc.wait(timeout=30) == 0, srv.log()
    assert not pid_alive(worker)
    assert has_message(srv, r"^Shutting down: Master$", "INFO"), srv.log()
    assert not has_message(srv, r"exited with code|was sent"), srv.log()


# -- worker signals --------------------------------------------------------------

def test_worker_term_finishes_its_request_and_is_replaced(start_server, tmp_path):
    started = tmp_path / "started"
    srv = start_server(APP, "-w", "1", "--graceful-timeout", "30",
                       env={"STARTED_FILE": str(started)})
    assert wait_booted(srv, 1)
    worker = booted_pids(srv)[0]
    outcome = {}

    def client():
        try:
            outcome["resp"] = get(srv, "/slow?s=2", timeout=30)
        except Exception as exc:
            outcome["error"] = exc

    t = threading.Thread(target=client, daemon=True)
    t.start()
    assert wait_for(started.exists, timeout=20)
    os.kill(worker, signal.SIGTERM)
    t.join(timeout=40)
    assert "error" not in outcome, outcome
    assert outcome["resp"].status == 200
    assert outcome["resp"].body == b"slept"
    assert int(outcome["resp"].header("X-Worker-Pid")) == worker
    assert wait_gone([worker])
    assert wait_booted(srv, 2), srv.log()
    assert int(ok_get(srv).header("X-Worker-Pid")) == booted_pids(srv)[1]


@pytest.mark.parametrize("sig", [signal.SIGQUIT, signal.SIGINT])
def test_worker_quick_stop_signals_replace_it(start_server, sig):
    srv = start_server(APP, "-w", "2")
    assert wait_booted(srv, 2)
    victim = booted_pids(srv)[0]
    os.kill(victim, sig)
    assert wait_gone([victim], timeout=15)
    assert wait_booted(srv, 3), srv.log()
    assert wait_worker_count(srv.pid, 2)
    assert victim not in children(srv.pid)
    assert ok_get(srv).status == 200
    assert srv.proc.poll() is None


# -- USR2 --------------------------------------------------------------------------

def _usr2_new_master(srv, pidfile, old_workers, leftovers):
    """Send USR2 and wait for the new master: a child of the old one that
    writes PIDFILE.2 and starts its own workers.  Returns its PID."""
    srv.proc.send_signal(signal.SIGUSR2)
    new_master = wait_for(lambda: read_pid(pidfile + ".2"), timeout=30)
    # Registered before any assertion, so it is stopped whatever happens.
    spawned = [p for p in children(srv.pid) if p not in old_workers]
    leftovers.extend(spawned + ([new_master] if new_master else []))
    assert new_master, "no %s.2 after USR2:\n%s" % (pidfile, srv.log())
    assert new_master != srv.pid
    assert parent_of(new_master) == srv.pid
    assert read_pid(pidfile) == srv.pid
    return new_master


def test_usr2_reexecs_a_new_master_promoted_when_the_old_one_stops(start_server, tmp_path,
                                                                   leftovers):
    pidfile = str(tmp_path / "app.pid")
    srv = start_server(APP, "-w", "2", "-p", pidfile)
    assert wait_booted(srv, 2)
    assert read_pid(pidfile) == srv.pid
    old_workers = children(srv.pid)
    assert len(old_workers) == 2

    new_master = _usr2_new_master(srv, pidfile, old_workers, leftovers)
    assert wait_worker_count(new_master, 2), srv.log()
    new_workers = children(new_master)
    assert has_message(srv, r"^Handling signal: usr2$", "INFO")
    # Both generations serve the same port until the old one is stopped.
    assert all(pid_alive(p) for p in old_workers)
    assert ok_get(srv).status == 200

    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=40) == 0
    assert wait_gone(old_workers)
    assert wait_message(srv, r"^Master has been promoted\.$", timeout=30), srv.log()
    assert wait_for(lambda: read_pid(pidfile) == new_master, timeout=15), read_pid(pidfile)
    assert wait_for(lambda: not os.path.exists(pidfile + ".2"), timeout=15)
    assert pid_alive(new_master)
    for _ in range(10):
        pid = int(ok_get(srv).header("X-Worker-Pid"))
        assert pid in new_workers
        assert parent_of(pid) == new_master

    # The promoted master stops like any master and removes its pid file.
    os.kill(new_master, signal.SIGTERM)
    assert wait_gone([new_master] + new_workers, timeout=40)
    assert wait_for(lambda: not os.path.exists(pidfile), timeout=10)


# -- under load: zero failed requests -------------------------------------------------

def _assert_no_failures(load, **ignore):
    failed = load.failures(**ignore)
    assert not failed, "%s\nfirst failures: %s" % (load.summary(), failed[:10])
    assert len(load.ok()) > 0, load.summary()


def test_load_survives_kill_9_of_a_worker(start_server):
    srv = start_server(APP, "-w", "2", *CONCURRENT)
    assert wait_booted(srv, 2)
    victim = booted_pids(srv)[0]
    with Load(srv, threads=LOAD_THREADS, duration=60) as load:
        assert load.wait_ok(100), load.summary()
        killed_at = load.mark("kill")
        os.kill(victim, signal.SIGKILL)
        assert wait_booted(srv, 3), srv.log()
        assert wait_worker_count(srv.pid, 2)
        assert load.wait_ok(200, since=time.monotonic()), load.summary()
    _assert_no_failures(load, pids={victim}, ignore_inflight_at=killed_at)
    assert ok_get(srv).status == 200


def test_load_survives_hup(start_server):
    srv = start_server(APP, "-w", "2", *CONCURRENT)
    assert wait_booted(srv, 2)
    old = booted_pids(srv)
    with Load(srv, threads=LOAD_THREADS, duration=60) as load:
        assert load.wait_ok(100), load.summary()
        srv.proc.send_signal(signal.SIGHUP)
        assert wait_booted(srv, 4), srv.log()
        assert wait_gone(old, timeout=40)
        after = time.monotonic()
        assert load.wait_ok(200, since=after), load.summary()
    _assert_no_failures(load)
    assert load.pids(since=after) <= set(booted_pids(srv)[2:]), load.summary()


def test_load_survives_ttin_then_ttou(start_server):
    srv = start_server(APP, "-w", "2", *CONCURRENT)
    assert wait_booted(srv, 2)
    with Load(srv, threads=LOAD_THREADS, duration=60) as load:
        assert load.wait_ok(100), load.summary()
        srv.proc.send_signal(signal.SIGTTIN)
        assert wait_booted(srv, 3), srv.log()
        assert wait_worker_count(srv.pid, 3)
        assert load.wait_ok(100, since=time.monotonic()), load.summary()
        before = children(srv.pid)
        srv.proc.send_signal(signal.SIGTTOU)
        assert wait_worker_count(srv.pid, 2)
        assert wait_gone(set(before) - set(children(srv.pid)), timeout=40)
        assert load.wait_ok(200, since=time.monotonic()), load.summary()
    _assert_no_failures(load)


def test_load_survives_a_usr2_upgrade(start_server, tmp_path, leftovers):
    pidfile = str(tmp_path / "app.pid")
    srv = start_server(APP, "-w", "2", "-p", pidfile, *CONCURRENT)
    assert wait_booted(srv, 2)
    old_workers = children(srv.pid)
    with Load(srv, threads=LOAD_THREADS, duration=90) as load:
        assert load.wait_ok(100), load.summary()
        new_master = _usr2_new_master(srv, pidfile, old_workers, leftovers)
        assert wait_worker_count(new_master, 2), srv.log()
        new_workers = children(new_master)
        assert load.wait_ok(100, since=time.monotonic()), load.summary()
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(timeout=40) == 0
        assert wait_gone(old_workers, timeout=40)
        after = time.monotonic()
        assert wait_for(lambda: read_pid(pidfile) == new_master, timeout=30), srv.log()
        assert load.wait_ok(200, since=after), load.summary()
    _assert_no_failures(load)
    assert load.pids(since=after) <= set(new_workers), load.summary()
