"""WebSockets under rsgi's ASGI worker (`-k asgi`), driven by the
`websockets` client: echo, subprotocols and headers, denied handshakes
(403 and the `websocket.http.response` extension), fragmentation,
ping/pong, close codes both ways, the message-size bound,
permessage-deflate, protocol errors, back-pressure, the worker's stop, and
a FastAPI endpoint. The apps are tests/apps/ws_apps.py and
ws_fastapi_app.py."""

import json
import os
import signal
import socket
import struct

import pytest

import conftest
from _rawhttp import wait_for

websockets = pytest.importorskip("websockets")
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

pytestmark = pytest.mark.skipif(conftest.SERVER_KIND != "rsgi", reason="rsgi's ASGI worker")

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


@pytest.fixture
def ws_server(start_server, tmp_path):
    def start(*args):
        trace = tmp_path / "trace.txt"
        srv = start_server("ws_apps:app", "-k", "asgi", *args, env={"WS_TRACE": str(trace)})
        srv.trace = trace
        srv.ws = "ws://127.0.0.1:%d" % srv.port
        return srv
    return start


def traced(srv, line):
    return srv.trace.exists() and line in srv.trace.read_text().splitlines()


def raw_handshake(srv, path="/echo", extra=""):
    s = srv.connect()
    s.sendall(("GET %s HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n%s\r\n" % (path, KEY, extra)).encode())
    return s


def read_head(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


class Frames:
    """The server's frames from a raw socket, in order. What a read brings
    past the end of a frame is kept for the next: the stream may bring
    several frames at once (the loop's pong and the app's echo, say)."""

    def __init__(self, sock, rest=b""):
        self.sock, self.buf = sock, rest

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                return False
            self.buf += chunk
        return True

    def next(self):
        """(opcode, payload), or None at the end of the stream."""
        if not self._need(2):
            return None
        op, n, at = self.buf[0] & 0x0F, self.buf[1] & 0x7F, 2
        if n == 126:
            assert self._need(4)
            n, at = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            assert self._need(10)
            n, at = struct.unpack(">Q", self.buf[2:10])[0], 10
        assert self._need(at + n), "the connection closed inside a frame"
        frame, self.buf = (op, self.buf[at:at + n]), self.buf[at + n:]
        return frame


def masked(opcode, payload, fin=True):
    mask = b"\x01\x02\x03\x04"
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_echo_text_and_binary(ws_server):
    srv = ws_server()
    with connect(srv.ws + "/echo", open_timeout=10) as ws:
        ws.send("h\u00e9llo \u20ac")
        assert ws.recv(timeout=10) == "h\u00e9llo \u20ac"
        ws.send(b"\x00\x01\xff")
        assert ws.recv(timeout=10) == b"\x00\x01\xff"
        big = os.urandom(600 * 1024)  # past the 256 KiB output window
        ws.send(big)
        assert ws.recv(timeout=20) == big
        assert ws.response.status_code == 101
    assert wait_for(lambda: traced(srv, "accepted ws 1.1"))
    assert wait_for(lambda: traced(srv, "disconnect 1000 "))
    # Plain HTTP on the same server is still HTTP.
    s = srv.connect()
    s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    head, rest = read_head(s)
    assert head.startswith("HTTP/1.1 200") and rest == b"plain http"


def test_subprotocols_and_extra_headers(ws_server):
    srv = ws_server()
    with connect(srv.ws + "/subprotocol", subprotocols=["chat", "superchat"], open_timeout=10) as ws:
        assert ws.subprotocol == "superchat"
        assert ws.response.headers["x-custom"] == "yes"
        ws.send("x")
        assert ws.recv(timeout=10) == "x"
    assert traced(srv, "offered chat,superchat")


def test_denied_handshakes(ws_server):
    srv = ws_server()
    with pytest.raises(InvalidStatus) as e:
        connect(srv.ws + "/deny", open_timeout=10)
    assert e.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as e:
        connect(srv.ws + "/deny-response", open_timeout=10)
    assert e.value.response.status_code == 401
    assert e.value.response.body == b"nope"


def test_bad_handshakes_are_400_and_426(ws_server):
    srv = ws_server()
    s = raw_handshake(srv, extra="Sec-WebSocket-Key: %s\r\n" % KEY)  # two keys
    head, _ = read_head(s)
    assert head.startswith("HTTP/1.1 400 ")
    s = srv.connect()
    s.sendall(("GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: %s\r\n\r\n" % KEY).encode())
    head, _ = read_head(s)
    assert head.startswith("HTTP/1.1 426 ")
    assert "\r\nSec-WebSocket-Version: 13\r\n" in head + "\r\n"


def test_the_raw_handshake_and_frames(ws_server):
    srv = ws_server()
    s = raw_handshake(srv)
    head, rest = read_head(s)
    assert head.startswith("HTTP/1.1 101 Switching Protocols")
    assert "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    assert rest == b""
    # A fragmented text message with a ping between its fragments: the
    # pong comes from the loop, the message whole from the app. Both are in
    # before either is read, so one read brings them together (4 bytes of
    # pong, 12 of message): neither may be lost.
    s.sendall(masked(0x1, b"frag", fin=False) + masked(0x9, b"p!") + masked(0x0, b"mented"))
    assert wait_for(lambda: len(s.recv(64, socket.MSG_PEEK)) >= 4 + 12)
    frames = Frames(s, rest)
    assert frames.next() == (0xA, b"p!")
    assert frames.next() == (0x1, b"fragmented")
    # An unmasked frame is a protocol error: close 1002.
    s.sendall(b"\x81\x02hi")
    op, payload = frames.next()
    assert op == 0x8 and struct.unpack(">H", payload[:2])[0] == 1002
    assert wait_for(lambda: traced(srv, "disconnect 1002 client frame not masked"))


def test_fragmented_messages_from_the_client(ws_server):
    srv = ws_server()
    with connect(srv.ws + "/echo", open_timeout=10) as ws:
        ws.send(["ab", "c\u00e9", "d"])
        assert ws.recv(timeout=10) == "ab" + "c\u00e9" + "d"
        ws.send([b"\x01", b"", b"\x02\x03"])
        assert ws.recv(timeout=10) == b"\x01\x02\x03"


def test_ping_pong(ws_server):
    srv = ws_server()
    with connect(srv.ws + "/echo", open_timeout=10) as ws:
        assert ws.ping(b"are you there").wait(10)
        ws.send("still here")
        assert ws.recv(timeout=10) == "still here"


def test_close_codes_both_ways(ws_server):
    srv = ws_server()
    with connect(srv.ws + "/close", open_timeout=10) as ws:
        assert ws.recv(timeout=10) == "closing"
        with pytest.raises(ConnectionClosed) as e:
            ws.recv(timeout=10)
    assert (e.value.rcvd.code, e.value.rcvd.reason) == (4001, "bye")
    assert wait_for(lambda: traced(srv, "after close websocket.disconnect 4001"))
    with connect(srv.ws + "/echo", open_timeout=10) as ws:
        ws.close(4002, "client bye")
    assert ws.close_code == 4002
    assert wait_for(lambda: traced(srv, "disconnect 4002 client bye"))


def test_an_app_error_is_1011(ws_server):
    srv = ws_server()
    with connect(srv.ws + "/raise", open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed) as e:
            ws.recv(timeout=10)
    assert e.value.rcvd.code == 1011
    assert wait_for(lambda: "the app failed" in srv.log())


def test_max_message_size(ws_server):
    srv = ws_server("--websocket-max-message-size", "1000")
    with connect(srv.ws + "/echo", open_timeout=10, compression=None) as ws:
        ws.send(b"x" * 1000)
        assert ws.recv(timeout=10) == b"x" * 1000
        ws.send(b"x" * 1001)
        with pytest.raises(ConnectionClosed) as e:
            ws.recv(timeout=10)
    assert e.value.rcvd.code == 1009
    # Compressed, the bound is on the decompressed size.
    with connect(srv.ws + "/echo", open_timeout=10) as ws:
        ws.send(bytes(100_000))
        with pytest.raises(ConnectionClosed) as e:
            ws.recv(timeout=10)
    assert e.value.rcvd.code == 1009


def test_permessage_deflate(ws_server):
    srv = ws_server()
    with connect(srv.ws + "/echo", open_timeout=10) as ws:
        assert ws.response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
        text = "compress me " * 5000
        for _ in range(3):  # the contexts carry over from message to message
            ws.send(text)
            assert ws.recv(timeout=10) == text
    with connect(srv.ws + "/echo", open_timeout=10, compression=None) as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        ws.send("plain")
        assert ws.recv(timeout=10) == "plain"


def test_a_slow_reader_pauses_the_apps_send(ws_server):
    srv = ws_server()
    # A client that reads nothing: a small receive buffer, and a client
    # library that stops reading once one message waits for it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", srv.port))
    with connect(srv.ws + "/burst", sock=sock, open_timeout=10, compression=None, max_queue=1) as ws:
        assert wait_for(lambda: traced(srv, "sent 1"))
        # Every buffer on the way (the 256 KiB output window, the
        # sockets', the client's one message) holds far less than the 16
        # MiB the app wants to send: its send() must be paused.
        first = ws.recv(timeout=10)
        sent = [line for line in srv.trace.read_text().splitlines() if line.startswith("sent ")]
        assert len(sent) < 256, "the app sent everything while the client read nothing"
        got = [first]
        while got[-1] != "done":
            got.append(ws.recv(timeout=30))
        assert len(got) == 257
        assert all(len(m) == 64 * 1024 for m in got[:-1])


def test_the_worker_stop_closes_with_1012(ws_server):
    srv = ws_server()
    with connect(srv.ws + "/echo", open_timeout=10) as ws:
        ws.send("hi")
        assert ws.recv(timeout=10) == "hi"
        srv.proc.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as e:
            ws.recv(timeout=20)
    assert e.value.rcvd.code == 1012
    assert wait_for(lambda: traced(srv, "disconnect 1012 "))
    assert srv.proc.wait(timeout=20) == 0


def test_fastapi_websocket_endpoint(start_server):
    pytest.importorskip("fastapi")
    srv = start_server("ws_fastapi_app:app", "-k", "uvicorn.workers.UvicornWorker")
    with connect("ws://127.0.0.1:%d/ws/lobby" % srv.port, open_timeout=10) as ws:
        ws.send('{"hello": [1, 2]}')
        assert json.loads(ws.recv(timeout=10)) == {"room": "lobby", "got": {"hello": [1, 2]}, "n": len(str({"hello": [1, 2]}))}
    with pytest.raises(InvalidStatus) as e:
        connect("ws://127.0.0.1:%d/nowhere" % srv.port, open_timeout=10)
    assert e.value.response.status_code == 403
