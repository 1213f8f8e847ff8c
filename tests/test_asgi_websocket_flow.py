"""WebSocket connections over time under rsgi's ASGI worker: the server's
keep-alive pings (`--ws-ping-interval` / `--ws-ping-timeout`), the bound
on messages queued for an app that does not receive (the client is
pushed back, nothing is lost), and what a connection leaves in the access
log, the request hooks and statsd. The apps are tests/apps/ws_apps.py."""

import logging
import socket
import struct

import pytest

import conftest
from _rawhttp import wait_for

pytest.importorskip("websockets")
from websockets.sync.client import connect  # noqa: E402

from test_asgi_websocket import Frames, masked, raw_handshake, read_head, traced, ws_server  # noqa: E402,F401

pytestmark = pytest.mark.skipif(conftest.SERVER_KIND != "rsgi", reason="rsgi's ASGI worker")

PINGS = ("--ws-ping-interval", "0.2", "--ws-ping-timeout", "0.2")


def opened(srv, path):
    s = raw_handshake(srv, path)
    s.settimeout(20)
    head, rest = read_head(s)
    assert head.startswith("HTTP/1.1 101 "), head
    return s, Frames(s, rest)


# -- keep-alive pings ----------------------------------------------------------

def test_a_client_that_answers_pings_stays_connected(ws_server):
    srv = ws_server(*PINGS)
    s, frames = opened(srv, "/echo")
    pings = []
    while len(pings) < 3:
        op, payload = frames.next()
        assert op == 0x9, (op, payload)
        pings.append(payload)
        s.sendall(masked(0xA, payload))
    assert len(set(pings)) == 3, "each ping has its own payload"
    # Still open: a message is echoed (pings may come in between).
    s.sendall(masked(0x1, b"still here"))
    while True:
        op, payload = frames.next()
        if op != 0x9:
            break
        s.sendall(masked(0xA, payload))
    assert (op, payload) == (0x1, b"still here")
    s.close()


@pytest.mark.parametrize("source", ["flags", "config file"])
def test_a_client_that_never_answers_is_closed_with_1011(ws_server, tmp_path, source):
    if source == "flags":
        srv = ws_server(*PINGS)
    else:
        conf = tmp_path / "ws.conf.py"
        conf.write_text("websocket_ping_interval = 0.2\nwebsocket_ping_timeout = 0.2\n")
        srv = ws_server("-c", str(conf))
    s, frames = opened(srv, "/echo")
    seen = []
    while True:
        frame = frames.next()
        assert frame is not None, "closed without a close frame: %r" % seen
        seen.append(frame[0])
        if frame[0] == 0x8:
            break
    assert seen[:-1] == [0x9], "one ping, unanswered, then the close"
    assert struct.unpack(">H", frame[1][:2])[0] == 1011
    assert frame[1][2:] == b"keepalive ping timeout"
    assert frames.next() is None, "the server closes the connection"
    assert wait_for(lambda: traced(srv, "disconnect 1011 keepalive ping timeout"))


def test_the_websockets_client_answers_the_pings(ws_server):
    srv = ws_server(*PINGS)
    pings = []

    class Seen(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("< PING"):
                pings.append(record)

    logger = logging.getLogger("test.ws.pings")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(Seen())
    # The client sends no pings of its own: only the server's are seen.
    with connect(srv.ws + "/echo", open_timeout=10, ping_interval=None, logger=logger) as ws:
        assert wait_for(lambda: len(pings) >= 3)
        ws.send("tick")
        assert ws.recv(timeout=10) == "tick"
    assert not traced(srv, "disconnect 1011 keepalive ping timeout")


def test_pings_are_off_at_zero(ws_server):
    srv = ws_server("--ws-ping-interval", "0")
    s, frames = opened(srv, "/echo")
    # Messages echo and no ping comes between them.
    for i in range(3):
        s.sendall(masked(0x1, b"m%d" % i))
        assert frames.next() == (0x1, b"m%d" % i)
    s.close()


# -- the inbound queue ---------------------------------------------------------

def test_an_app_that_does_not_receive_pushes_the_client_back(ws_server):
    srv = ws_server()
    s, frames = opened(srv, "/hold")
    assert wait_for(lambda: traced(srv, "holding"))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    s.setblocking(False)
    payload = bytes(1016)
    sent, pending, blocked = 0, b"", False
    # The worker queues a few dozen messages for the app, then reads no
    # more; the kernel's buffers fill and the client's send blocks. 64 MiB
    # sent without blocking would mean the worker kept reading.
    while sent < 65536:
        if not pending:
            pending = masked(0x2, sent.to_bytes(8, "big") + payload)
            sent += 1
        try:
            n = s.send(pending)
        except BlockingIOError:
            blocked = True
            break
        pending = pending[n:]
    assert blocked, "the client never had to wait"
    # The app catches up: everything arrives, whole and in order.
    release = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    release.sendall(b"GET /release HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert read_head(release)[0].startswith("HTTP/1.1 200")
    release.close()
    s.setblocking(True)
    s.settimeout(30)
    s.sendall(pending + masked(0x1, b"end"))
    assert frames.next() == (0x1, b"got %d in order True" % sent)
    s.close()


# -- access log, hooks, statsd -------------------------------------------------

def test_one_access_log_line_per_connection_when_it_ends(ws_server):
    srv = ws_server("--access-logfile", "-", "--access-logformat", '"%(r)s" %(s)s %(B)s %(D)s')
    with connect(srv.ws + "/echo?room=1", open_timeout=10, compression=None) as ws:
        ws.send("x" * 10)
        assert ws.recv(timeout=10) == "x" * 10
        # Open: not logged yet.
        assert '"GET /echo?room=1 HTTP/1.1"' not in srv.log()
    assert wait_for(lambda: '"GET /echo?room=1 HTTP/1.1" 101 ' in srv.log())
    line = next(l for l in srv.log().splitlines() if '"GET /echo?room=1 HTTP/1.1" 101 ' in l)
    sent, micros = line.split('" 101 ')[1].split()[:2]
    assert int(sent) == 12, "one 10-byte text frame with its 2-byte header"
    assert int(micros) > 0
    # A denied handshake is logged with its status.
    with pytest.raises(Exception):
        connect(srv.ws + "/deny", open_timeout=10)
    assert wait_for(lambda: '"GET /deny HTTP/1.1" 403 ' in srv.log())


def test_request_hooks_and_statsd_see_the_connection(ws_server, tmp_path):
    conf, out = conftest.request_hooks_conf(tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(20)
        srv = ws_server("-c", str(conf), "--statsd-host", "127.0.0.1:%d" % sink.getsockname()[1])
        with connect(srv.ws + "/echo", open_timeout=10) as ws:
            ws.send("hi")
            assert ws.recv(timeout=10) == "hi"
            assert out.read_text().splitlines() == ["pre GET /echo"], "post_request waits for the end"
        assert wait_for(lambda: out.read_text().splitlines() == ["pre GET /echo", "post /echo GET 101 Switching Protocols"])
        seen = []
        while not any(b"gunicorn.request.status.101:1|c" in d for d in seen):
            seen.append(sink.recv(4096))
    assert any(d.startswith(b"gunicorn.requests:1|c") for d in seen), seen
    assert not any(b"gunicorn.request.duration" in d for d in seen), "a connection's length is no latency"
