"""Work conservation: a slow or stuck request never holds up a client that a
sibling worker could serve, and a request that never entered the app is not
lost when its worker dies or retires.

Each test first learns which worker holds which keep-alive connection (every
response names its worker in X-Worker-Pid), then makes one worker busy and
checks what happens to the other clients of that worker. They wait for
positive signals (an app's "started" file, a response, a worker gone) and
assert no timings: "answered while the slow request is still running" is
checked by the slow connection having nothing to read yet.
"""

import os
import select
import signal

import pytest

import conftest
from _rawhttp import RawConn, wait_for
from loadgen import Load
from test_master import booted_pids, wait_booted
from test_signals import GUNICORN, wait_gone, wait_worker_count

APP = "supervision_apps:router"
SLOW_S = 6  # far longer than any answer the tests wait for


def keepalive(srv, path="/"):
    return ("GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path).encode()


def connections_by_worker(srv, want, on_one, limit=80):
    """Open keep-alive connections until one worker holds ``on_one`` of
    them; returns (that worker's pid, its connections, all connections)."""
    by_pid = {}
    everything = []
    for _ in range(limit):
        c = RawConn(srv.connect(timeout=10), timeout=10)
        everything.append(c)
        c.send(keepalive(srv))
        resp = c.read_response()
        assert resp.status == 200, resp
        by_pid.setdefault(int(resp.header("X-Worker-Pid")), []).append(c)
        for pid, conns in by_pid.items():
            if len(conns) >= on_one and len(everything) >= want:
                return pid, conns, everything
    pytest.fail("no worker took %d of %d connections: %s" % (on_one, limit, {p: len(c) for p, c in by_pid.items()}))


def started_pids(path):
    try:
        with open(path) as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


def nothing_to_read(conn):
    """The peer has sent nothing on ``conn`` yet (its answer is not in)."""
    if conn.buf:
        return False
    readable, _, _ = select.select([conn.sock], [], [], 0)
    return not readable


def close_all(conns):
    for c in conns:
        c.close()


@pytest.mark.skipif(GUNICORN, reason="gunicorn's gthread worker queues behind its busy threads")
@pytest.mark.parametrize("threads", [1, 2])
def test_a_slow_request_does_not_hold_up_other_clients_of_its_worker(start_server, tmp_path, threads):
    started = tmp_path / "started"
    srv = start_server(APP, "-w", "2", "--threads", str(threads), env={"STARTED_FILE": str(started)})
    assert wait_booted(srv, 2)
    busy, conns, everything = connections_by_worker(srv, want=8, on_one=threads + 3)
    slow, waiting = conns[:threads], conns[threads:]
    try:
        for c in slow:
            c.send(keepalive(srv, "/slow?s=%d" % SLOW_S))
        assert wait_for(lambda: started_pids(started).count(busy) >= threads, timeout=20), started_pids(started)
        # Every app thread of that worker is taken: its other clients must
        # be answered by the sibling, while the slow requests still run.
        for c in waiting:
            c.send(keepalive(srv, "/"))
        for c in waiting:
            resp = c.read_response()
            assert resp.status == 200 and resp.body == b"ok", resp
            assert int(resp.header("X-Worker-Pid")) != busy
        assert all(nothing_to_read(c) for c in slow), "a slow request finished before the others were answered"
        # The connections stay with their new worker, and the slow requests
        # are answered in full.
        for c in waiting:
            c.send(keepalive(srv, "/"))
            assert c.read_response().status == 200
        for c in slow:
            resp = c.read_response()
            assert resp.status == 200 and resp.body == b"slept", resp
            assert int(resp.header("X-Worker-Pid")) == busy
    finally:
        close_all(everything)


@pytest.mark.parametrize("threads", [1, 4])
@pytest.mark.parametrize("writes", ["one", "small"])
def test_a_thousand_pipelined_requests_are_all_answered_in_order(start_server, threads, writes):
    srv = start_server(APP, "-w", "1", "--threads", str(threads))
    n = 1000
    data = b"".join(keepalive(srv, "/qs?%d" % i) for i in range(n))
    with RawConn(srv.connect(timeout=20), timeout=20) as c:
        if writes == "one":
            c.send(data)
        else:
            for i in range(0, len(data), 13):
                c.send(data[i:i + 13])
        for i in range(n):
            resp = c.read_response()
            assert resp.status == 200 and resp.body == str(i).encode(), (i, resp)


@pytest.mark.skipif(GUNICORN, reason="gunicorn's timeout covers the worker, not the request")
def test_a_timeout_kill_loses_no_request_that_had_not_entered_the_app(start_server, tmp_path):
    started = tmp_path / "started"
    srv = start_server(APP, "-w", "2", "--timeout", "3", "--keep-alive", "60",
                       env={"STARTED_FILE": str(started)})
    assert wait_booted(srv, 2)
    doomed, conns, everything = connections_by_worker(srv, want=8, on_one=6)
    hung, waiting, idle = conns[0], conns[1:3], conns[3:]
    try:
        hung.send(keepalive(srv, "/sleep_forever"))
        assert wait_for(lambda: doomed in started_pids(started), timeout=20)
        for c in waiting:
            c.send(keepalive(srv, "/"))
        for c in waiting:
            resp = c.read_response()
            assert resp.status == 200 and int(resp.header("X-Worker-Pid")) != doomed, resp
        # The hung worker is killed for its timeout; its idle keep-alive
        # clients must find their connections alive elsewhere.
        assert wait_gone([doomed], timeout=30), srv.log()
        for c in idle + waiting:
            c.send(keepalive(srv, "/"))
            resp = c.read_response()
            assert resp.status == 200 and int(resp.header("X-Worker-Pid")) != doomed, resp
        assert "WORKER TIMEOUT" in srv.log()
    finally:
        close_all(everything)


def _assert_lossless(load):
    failed = load.failures()
    assert not failed, "%s\n%s" % (load.summary(), failed[:10])
    retried = [r for r in load.results if r.retried]
    assert not retried, "%d requests needed a retry after an idle close" % len(retried)


@pytest.mark.skipif(GUNICORN, reason="gunicorn's sync worker closes every connection")
def test_max_requests_under_keep_alive_load_loses_nothing(start_server):
    srv = start_server(APP, "-w", "2", "--max-requests", "60")
    assert wait_booted(srv, 2)
    with Load(srv, threads=6, duration=60, per_connection=1000, retry_idle_close=False) as load:
        assert wait_booted(srv, 7, timeout=50), srv.log()
        assert load.wait_ok(500), load.summary()
    _assert_lossless(load)
    assert wait_worker_count(srv.pid, 2)


@pytest.mark.skipif(GUNICORN, reason="--max-worker-memory is rsgi's own")
def test_max_worker_memory_under_keep_alive_load_loses_nothing(start_server):
    srv = start_server(APP, "-w", "2", "--max-worker-memory", "120")
    assert wait_booted(srv, 2)
    with Load(srv, threads=4, duration=60, per_connection=1000, retry_idle_close=False) as load:
        # Grow the workers past the ceiling while the load runs.
        grow = Load(srv, path="/grow", threads=1, duration=40, per_connection=1000, retry_idle_close=False)
        with grow:
            assert wait_booted(srv, 5, timeout=40), srv.log()
        assert load.wait_ok(300), load.summary()
    _assert_lossless(load)
    _assert_lossless(grow)


@pytest.mark.skipif(GUNICORN, reason="gunicorn's sync worker keeps no connection alive")
def test_a_retiring_worker_keeps_an_idle_connection_for_its_replacement(start_server, tmp_path):
    # The replacement takes longer to boot than the keep-alive time: the
    # retiring worker must not shut the idle connection at its idle limit
    # meanwhile, but hand it over once the replacement serves, so the
    # client's next request on it is answered.
    conf = tmp_path / "slow_replacement.py"
    conf.write_text("import time\n\n\ndef post_fork(server, worker):\n"
                    "    if worker.age > 1:\n        time.sleep(3)\n")
    srv = start_server(APP, "-w", "1", "--max-requests", "2", "--keep-alive", "1", "-c", str(conf))
    assert wait_booted(srv, 1)
    with RawConn(srv.connect(timeout=10), timeout=10) as idle:
        idle.send(keepalive(srv))
        first = idle.read_response()
        assert first.status == 200, first
        old = int(first.header("X-Worker-Pid"))
        with RawConn(srv.connect(timeout=10), timeout=10) as last:
            last.send(keepalive(srv))
            resp = last.read_response()  # the worker's last request: it retires
            assert resp.status == 200, resp
        # It leaves once its last connection has moved to the replacement.
        assert wait_gone([old], timeout=30), srv.log()
        idle.send(keepalive(srv))
        resp = idle.read_response()
        assert resp.status == 200, (resp, srv.log())
        assert int(resp.header("X-Worker-Pid")) != old
