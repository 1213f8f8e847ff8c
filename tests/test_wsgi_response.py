"""Response bodies: close() on every path, framing (chunked, Content-Length,
close-delimited), HEAD/204/304, wsgi.file_wrapper, large slow reads and the
Server/Date headers.  Apps live in ``apps/pep3333.py``."""

import email.utils
import hashlib
import re
import socket
import sys
import time
from datetime import datetime, timezone

import pytest

import conftest
from _rawhttp import RawConn, get, wait_for

sys.path.insert(0, str(conftest.APPS))
import pep3333  # noqa: E402  (the app module, for its reference data)

GUNICORN = conftest.SERVER_KIND == "gunicorn"
# gunicorn's sync worker never keeps connections alive; its gthread one does.
KEEPALIVE_ARGS = ["-k", "gthread"] if GUNICORN else []


@pytest.fixture(scope="module", params=conftest.WORKER_KINDS)
def served(request, tmp_path_factory):
    """The server, and the log its responses' ``close()`` calls write (one
    per worker kind)."""
    close_log = tmp_path_factory.mktemp("close") / "close.log"
    kind = conftest.kind_args(request.param) or KEEPALIVE_ARGS
    srv = conftest.spawn("pep3333:app", *kind, env={"CLOSE_LOG": str(close_log)})
    yield srv, close_log
    srv.stop(timeout=15)


@pytest.fixture(scope="module")
def server(served):
    return served[0]


@pytest.fixture(scope="module")
def close_log(served):
    return served[1]


def logged(close_log, line, timeout=20.0):
    def check():
        try:
            return line in close_log.read_text().splitlines()
        except FileNotFoundError:
            return False

    return wait_for(check, timeout=timeout)


def pipeline(server, *requests):
    """Send raw requests back to back on one connection; return the conn."""
    conn = RawConn(server.connect())
    conn.send(b"".join(requests))
    return conn


def req(path, method="GET", extra=b""):
    return b"%s %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (method.encode(), path.encode(), extra)


# -- close() ---------------------------------------------------------------

def test_close_called_on_success(server, close_log):
    resp = get(server, "/close_ok?ok1")
    assert resp.status == 200
    assert resp.body == b"a" * 10 + b"b" * 10 + b"c" * 10
    assert logged(close_log, "done ok1")
    assert logged(close_log, "close ok1")


def test_close_called_on_success_chunked(server, close_log):
    resp = get(server, "/close_ok_chunked?ok2")
    assert resp.status == 200
    assert resp.framing == "chunked"
    assert resp.body == b"a" * 10 + b"b" * 10 + b"c" * 10
    assert logged(close_log, "close ok2")


def test_close_called_when_iteration_raises_midway(server, close_log):
    with RawConn(server.connect()) as conn:
        conn.send(req("/close_raise_mid?mid1"))
        _, status, _, _, _ = conn.read_head()
        rest = conn.read_to_eof()
    assert status == 200
    assert rest.startswith(b"a") or b"aaaaaaaaaa" in rest
    assert not rest.endswith(b"0\r\n\r\n")
    assert logged(close_log, "close mid1")
    assert "done mid1" not in close_log.read_text()


def test_close_called_when_iteration_raises_first(server, close_log):
    resp = get(server, "/close_raise_first?first1")
    assert resp.status == 500
    assert logged(close_log, "close first1")


def test_close_called_when_client_disconnects(server, close_log):
    conn = RawConn(server.connect())
    conn.send(req("/close_forever?disc1"))
    _, status, _, _, _ = conn.read_head()
    assert status == 200
    received = len(conn.buf)
    while received < 256 * 1024:
        chunk = conn.sock.recv(65536)
        assert chunk
        received += len(chunk)
    # Close with unread data pending: the kernel answers further data with RST.
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.close()
    assert logged(close_log, "close disc1", timeout=30)
    assert "done disc1" not in close_log.read_text()


def test_close_called_for_file_wrapper_without_fileno(server, close_log):
    resp = get(server, "/file_wrapper_bytesio?bio1")
    assert resp.status == 200
    assert resp.body == pep3333.FILE_BYTES
    assert logged(close_log, "close bio1")


# -- framing ----------------------------------------------------------------

def test_chunked_when_no_content_length_on_http11(server):
    resp = get(server, "/chunks")
    assert resp.status == 200
    assert resp.framing == "chunked"
    assert not resp.has_header("Content-Length")
    # The empty item in the middle must not end the body early.
    assert resp.body == b"first,second,third"


def test_http10_without_content_length_is_close_delimited(server):
    with RawConn(server.connect()) as conn:
        conn.send(b"GET /chunks HTTP/1.0\r\nHost: x\r\n\r\n")
        resp = conn.read_response()
        assert resp.version == "HTTP/1.1" or resp.version == "HTTP/1.0"
        assert resp.framing == "close"
        assert not resp.has_header("Transfer-Encoding")
        assert resp.body == b"first,second,third"
        assert conn.eof


def test_content_length_truncates_extra_bytes(server):
    with pipeline(server, req("/truncate"), req("/hello", extra=b"Connection: close\r\n")) as conn:
        first = conn.read_response()
        assert first.status == 200
        assert first.body == b"hello"
        # Whatever follows is either a clean next response or the end of the
        # connection, never the surplus bytes.
        if conn.is_closed_by_peer(timeout=5.0):
            return
        assert not conn.buf.startswith(b" world")
        second = conn.read_response()
        assert second.status == 200
        assert second.body == b"Hello, World!"


def test_fewer_bytes_than_content_length_closes_connection(server):
    with RawConn(server.connect()) as conn:
        conn.send(req("/short"))
        _, status, _, headers, _ = conn.read_head()
        assert status == 200
        assert dict((k.lower(), v) for k, v in headers)["content-length"] == "100"
        rest = conn.read_to_eof()  # must not hang: the server closes
    assert rest == b"only-ten!!"


def test_head_has_no_body_but_keeps_content_length(server):
    with pipeline(server, req("/hello", "HEAD"), req("/hello", extra=b"Connection: close\r\n")) as conn:
        head = conn.read_response(method="HEAD")
        assert head.status == 200
        assert head.header("Content-Length") == "13"
        assert head.body == b""
        follow = conn.read_response()
        assert follow.status == 200
        assert follow.body == b"Hello, World!"


def test_head_of_streaming_app_has_no_body_or_chunk_framing(server):
    with pipeline(server, req("/chunks", "HEAD"), req("/hello", extra=b"Connection: close\r\n")) as conn:
        head = conn.read_response(method="HEAD")
        assert head.status == 200
        follow = conn.read_response()
        assert follow.status == 200
        assert follow.body == b"Hello, World!"


@pytest.mark.parametrize("name, status", [("no_content", 204), ("not_modified", 304)])
def test_204_and_304_have_no_body(server, name, status):
    with pipeline(server, req("/" + name), req("/hello", extra=b"Connection: close\r\n")) as conn:
        resp = conn.read_response()
        assert resp.status == status
        assert resp.body == b""
        assert not resp.has_header("Transfer-Encoding")
        if status == 204:
            assert resp.header("Content-Length") in (None, "0")
        follow = conn.read_response()
        assert follow.status == 200
        assert follow.body == b"Hello, World!"
        assert b"must-not-be-sent" not in follow.raw_head


# -- wsgi.file_wrapper -------------------------------------------------------

def test_file_wrapper_real_file(server):
    resp = get(server, "/file_wrapper")
    assert resp.status == 200
    assert resp.body == pep3333.FILE_BYTES


def test_file_wrapper_with_content_length(server):
    resp = get(server, "/file_wrapper_length")
    assert resp.status == 200
    assert resp.header("Content-Length") == str(len(pep3333.FILE_BYTES))
    assert resp.body == pep3333.FILE_BYTES


def test_file_wrapper_sends_at_most_content_length(server):
    with pipeline(server, req("/file_wrapper_partial"),
                  req("/hello", extra=b"Connection: close\r\n")) as conn:
        resp = conn.read_response()
        assert resp.status == 200
        assert resp.body == pep3333.FILE_BYTES[:1000]
        if conn.is_closed_by_peer(timeout=5.0):
            return
        follow = conn.read_response()
        assert follow.status == 200
        assert follow.body == b"Hello, World!"


def test_file_wrapper_over_bytesio_falls_back_to_iteration(server):
    resp = get(server, "/file_wrapper_bytesio")
    assert resp.status == 200
    assert resp.body == pep3333.FILE_BYTES


# -- large, slow -------------------------------------------------------------

@pytest.mark.parametrize("name", ["big", "big_chunked"])
def test_large_response_read_slowly_arrives_intact(server, name):
    expected = hashlib.sha256(pep3333.big_bytes()).hexdigest()
    sock = server.connect(timeout=30)
    with RawConn(sock, timeout=30) as conn:
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        conn.send(req("/" + name, extra=b"Connection: close\r\n"))
        raw = bytearray()
        while True:
            chunk = conn.sock.recv(32 * 1024)
            if not chunk:
                break
            raw += chunk
            time.sleep(0.002)
    replay = RawConn(_BytesSocket(bytes(raw)))
    resp = replay.read_response()
    assert resp.status == 200
    assert len(resp.body) == pep3333.BIG
    assert hashlib.sha256(resp.body).hexdigest() == expected


class _BytesSocket:
    """Just enough of a socket for RawConn to parse captured bytes."""

    def __init__(self, data):
        self.data = data

    def settimeout(self, t):
        pass

    def recv(self, n):
        out, self.data = self.data[:n], self.data[n:]
        return out

    def close(self):
        pass


# -- Server and Date ---------------------------------------------------------

IMF_FIXDATE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$")


def test_server_header(server):
    resp = get(server, "/hello")
    assert resp.header_list("Server") == ["gunicorn" if GUNICORN else "rsgi"]


def test_date_header_is_imf_fixdate(server):
    resp = get(server, "/hello")
    dates = resp.header_list("Date")
    assert len(dates) == 1
    assert IMF_FIXDATE.match(dates[0]), dates[0]
    when = email.utils.parsedate_to_datetime(dates[0])
    # A generous bound: the value is the current time, not a stale constant.
    assert abs((datetime.now(timezone.utc) - when).total_seconds()) < 3600
