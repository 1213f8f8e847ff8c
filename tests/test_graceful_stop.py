"""A graceful stop (TERM) under load loses nothing the kernel accepted:
connections already queued are served, new ones are refused (never reset
after the client connected), and requests on kept-alive connections are
answered (with ``Connection: close``) until the workers are done.

Load from tests/stopgen.py: 32 client threads (16 with keep-alive) against
an app that takes 20 ms, TERM 1.5 s in; the server must exit on its own, and
no request may be lost. Runs at -w 1 and -w 2, with one and four threads.
"""

import signal
import time

import pytest

from stopgen import StopLoad
from test_signals import GUNICORN
from _rawhttp import wait_for
from test_signals import leftovers  # noqa: F401  (the fixture)

APP = "supervision_apps:router"
PATH = "/slow?s=0.02"


@pytest.mark.skipif(GUNICORN, reason="gunicorn resets the connections left in its listen queue")
@pytest.mark.parametrize("keepalive", [False, True], ids=["new-connections", "keep-alive"])
@pytest.mark.parametrize("workers,threads", [(1, 1), (2, 1), (2, 4)])
def test_term_under_load_loses_no_accepted_connection(start_server, workers, threads, keepalive):
    srv = start_server(APP, "-w", str(workers), "--threads", str(threads))
    with StopLoad((srv.host, srv.port), path=PATH, threads=16 if keepalive else 32,
                  keepalive=keepalive, duration=30) as load:
        assert wait_for(lambda: load.served() >= 50, timeout=20), load.counts()
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(timeout=40) == 0, srv.log()
        stopped = load.counts()
        # Clients keep trying for a moment after the exit: each is refused.
        assert wait_for(lambda: load.counts()["refused"] > stopped["refused"] + 10, timeout=15), load.counts()
    counts = load.counts()
    assert counts["lost"] == 0, (counts, load.errors, srv.log())
    assert counts["served"] >= 50, counts
    assert "Shutting down: Master" in srv.log()


@pytest.mark.skipif(GUNICORN, reason="rsgi's own guarantee")
def test_term_answers_a_request_sent_on_an_idle_keep_alive_connection(start_server, tmp_path):
    # A worker with a request in flight is stopping; a client that had an
    # idle connection sends its next request meanwhile: it is answered,
    # marked close, not met by a closed connection.
    from _rawhttp import RawConn
    started = tmp_path / "started"
    srv = start_server(APP, "-w", "1", "--threads", "2", "--keep-alive", "30", env={"STARTED_FILE": str(started)})
    busy = RawConn(srv.connect(timeout=10), timeout=10)
    idle = RawConn(srv.connect(timeout=10), timeout=10)
    try:
        idle.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert idle.read_response().status == 200
        busy.send(b"GET /slow?s=2 HTTP/1.1\r\nHost: t\r\n\r\n")
        assert wait_for(started.exists, timeout=10)
        srv.proc.send_signal(signal.SIGTERM)
        assert wait_for(lambda: "Handling signal: term" in srv.log(), timeout=10)
        # The master logs the signal before it passes TERM on to the worker:
        # until the worker has it, the answer is a plain keep-alive one. Every
        # answer is a 200 (never a closed connection); the first one after
        # the worker saw TERM says close.
        deadline = time.monotonic() + 10
        while True:
            idle.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            resp = idle.read_response()
            assert resp.status == 200, resp
            if resp.header("Connection") == "close" or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert resp.header("Connection") == "close", resp
        assert busy.read_response().status == 200
        assert srv.proc.wait(timeout=30) == 0
    finally:
        busy.close()
        idle.close()


@pytest.mark.skipif(GUNICORN, reason="gunicorn resets the connections left in its listen queue")
def test_old_master_stopping_after_usr2_loses_nothing(start_server, tmp_path, leftovers):
    # After a USR2 upgrade both generations accept on the same sockets; the
    # old one's stop must leave them open to the new one (no filter) and
    # lose none of its own queued connections.
    from test_signals import _usr2_new_master, children, read_pid, wait_gone, wait_worker_count
    pidfile = str(tmp_path / "app.pid")
    srv = start_server(APP, "-w", "2", "-p", pidfile)
    old_workers = children(srv.pid)
    with StopLoad((srv.host, srv.port), path=PATH, threads=32, duration=60) as load:
        assert wait_for(lambda: load.served() >= 50, timeout=20), load.counts()
        new_master = _usr2_new_master(srv, pidfile, old_workers, leftovers)
        assert wait_worker_count(new_master, 2), srv.log()
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(timeout=40) == 0
        assert wait_gone(old_workers, timeout=40)
        assert wait_for(lambda: read_pid(pidfile) == new_master, timeout=30), srv.log()
        after = load.served()
        # The new generation goes on serving new connections.
        assert wait_for(lambda: load.served() >= after + 50, timeout=20), load.counts()
    counts = load.counts()
    assert counts["lost"] == 0 and counts["refused"] == 0, (counts, load.errors)
