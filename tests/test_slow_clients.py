"""Slow and idle clients must not starve the others (slowloris): a worker's
I/O loop holds idle connections without tying up an executor thread."""

import hashlib
import socket
import sys

import pytest

import conftest
from _rawhttp import RawConn, get

sys.path.insert(0, str(conftest.APPS))
import pep3333  # noqa: E402

GUNICORN = conftest.SERVER_KIND == "gunicorn"
IDLE_CONNECTIONS = 200


@pytest.mark.skipif(GUNICORN, reason="gunicorn's sync worker blocks on a half-sent request head")
def test_half_open_request_heads_do_not_block_new_requests(start_server):
    srv = start_server("pep3333:app", "-w", "1", "--threads", "1", "--timeout", "120")
    idle = []
    try:
        for _ in range(IDLE_CONNECTIONS):
            s = srv.connect(timeout=20)
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
            idle.append(s)
        # A well-behaved client on a fresh connection is served promptly.
        resp = get(srv, "/hello", timeout=20)
        assert resp.status == 200
        assert resp.body == b"Hello, World!"
        # The idle ones were held, not answered or dropped early with data.
        still_open = 0
        for s in idle[:20]:
            s.setblocking(False)
            try:
                data = s.recv(1)
            except BlockingIOError:
                still_open += 1
            else:
                assert data in (b"",) or data.startswith(b"H")
        assert still_open > 0
    finally:
        for s in idle:
            s.close()


def test_slow_reader_does_not_block_other_clients(start_server):
    args = ["-w", "1", "--threads", "2"]
    if GUNICORN:
        args = ["-k", "gthread"] + args
    srv = start_server("pep3333:app", *args)
    expected = hashlib.sha256(pep3333.big_bytes()).hexdigest()
    slow = srv.connect(timeout=60)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    try:
        slow.sendall(b"GET /big_chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        first = slow.recv(1024)  # the response has started; now stop reading
        assert first.startswith(b"HTTP/1.1 200")
        for _ in range(3):
            resp = get(srv, "/hello", timeout=20)
            assert resp.status == 200
            assert resp.body == b"Hello, World!"
        # Drain the slow response; it must still be intact.
        raw = conftest.recv_until_close(slow, first)
    finally:
        slow.close()
    replay = RawConn(_Replay(bytes(raw)))
    resp = replay.read_response()
    assert hashlib.sha256(resp.body).hexdigest() == expected


def test_many_idle_keepalive_connections_do_not_block(start_server):
    args = ["-w", "1", "--threads", "1", "--keep-alive", "60"]
    if GUNICORN:
        args = ["-k", "gthread"] + args  # the sync worker has no keep-alive
    srv = start_server("pep3333:app", *args)
    idle = []
    try:
        for _ in range(50):
            conn = RawConn(srv.connect(timeout=20), timeout=20)
            conn.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            assert conn.read_response().status == 200
            idle.append(conn)
        resp = get(srv, "/hello", timeout=20)
        assert resp.status == 200
        # The idle connections are still usable.
        for conn in idle[:5]:
            conn.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            assert conn.read_response().body == b"Hello, World!"
    finally:
        for conn in idle:
            conn.close()


class _Replay:
    def __init__(self, data):
        self.data = data

    def settimeout(self, t):
        pass

    def recv(self, n):
        out, self.data = self.data[:n], self.data[n:]
        return out

    def close(self):
        pass
