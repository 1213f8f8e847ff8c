"""``wsgi.input``: read(n), read(), read(-1), readline(), readline(limit),
readlines(), readlines(hint) and iteration over Content-Length and chunked
bodies, a body too large to buffer, ``Expect: 100-continue`` and empty bodies.

The reference for every answer is the same operation over ``io.BytesIO``
(``apps/input_apps.py:run_op``).
"""

import io
import json
import sys

import pytest

import conftest
from _rawhttp import RawConn

sys.path.insert(0, str(conftest.APPS))
import input_apps  # noqa: E402

SMALL_BODY = (b"alpha\nbeta\n\ngamma delta epsilon zeta eta theta\n"
              b"\xff\xfe binary \x00 bytes\r\nlast line without newline")


def _big_body(size=5 * 1024 * 1024):
    out = bytearray()
    i = 0
    while len(out) < size:
        out += b"%d:" % i + b"x" * (i % 300) + b"\n"
        i += 1
    return bytes(out[:size])


BIG_BODY = _big_body()

CASES = [
    ("read_n", 1), ("read_n", 7), ("read_n", 4096),
    ("read_all", 0), ("read_minus_one", 0),
    ("readline", 0), ("readline_limit", 1), ("readline_limit", 5), ("readline_limit", 4096),
    ("readlines", 0), ("readlines_hint", 10),
    ("iterate", 0), ("mixed", 3),
]


@pytest.fixture(scope="module", params=conftest.WORKER_KINDS)
def server(request):
    srv = conftest.spawn("input_apps:app", *conftest.kind_args(request.param))
    yield srv
    srv.stop(timeout=15)


@pytest.fixture(scope="module", params=conftest.WORKER_KINDS)
def validated_server(request):
    srv = conftest.spawn("input_apps:validated", *conftest.kind_args(request.param))
    yield srv
    srv.stop(timeout=15)


def expected(op, arg, body):
    return input_apps.run_op(op, io.BytesIO(body), arg)


def head(op, arg, extra):
    return (b"POST /%s?%d HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            b"Connection: close\r\n%s\r\n" % (op.encode(), arg, extra))


def chunked(body, size, extension=False):
    out = bytearray()
    for i in range(0, len(body), size):
        piece = body[i:i + size]
        ext = b";name=value" if extension and i == 0 else b""
        out += b"%x%s\r\n%s\r\n" % (len(piece), ext, piece)
    return bytes(out)


def post(server, op, arg, body, framing="length", chunk=5, trailers=b"", timeout=30):
    if framing == "length":
        data = head(op, arg, b"Content-Length: %d\r\n" % len(body)) + body
    else:
        data = (head(op, arg, b"Transfer-Encoding: chunked\r\n")
                + chunked(body, chunk, extension=True) + b"0\r\n" + trailers + b"\r\n")
    with RawConn(server.connect(timeout=timeout), timeout=timeout) as conn:
        conn.send(data)
        resp = conn.read_response()
    assert resp.status == 200, (resp, resp.body[:500])
    return json.loads(resp.body)


def check(got, op, arg, body):
    want = expected(op, arg, body)
    assert got["all_bytes"] is True
    assert got["size"] == want["size"] == len(body)
    assert got["sha256"] == want["sha256"]
    if op == "readlines_hint":
        # The hint may be ignored; every piece must still be one whole line.
        pieces = got["pieces"] or []
        for piece in pieces[:-1]:
            assert piece.endswith("\n")
        return
    assert got["sizes"] == want["sizes"]
    if want["pieces"] is not None:
        assert got["pieces"] == want["pieces"]


@pytest.mark.parametrize("op, arg", CASES)
def test_content_length_body(server, op, arg):
    got = post(server, op, arg, SMALL_BODY)
    check(got, op, arg, SMALL_BODY)
    assert got["content_length"] == str(len(SMALL_BODY))


@pytest.mark.parametrize("op, arg", CASES)
def test_chunked_body_with_trailers(server, op, arg):
    got = post(server, op, arg, SMALL_BODY, framing="chunked", chunk=5,
               trailers=b"X-Trailer: yes\r\nX-Other: 1\r\n")
    check(got, op, arg, SMALL_BODY)
    assert got["content_length"] in (None, "")
    assert got["input_terminated"] is True


@pytest.mark.parametrize("chunk", [1, 3, 4096])
def test_chunked_body_chunk_sizes(server, chunk):
    got = post(server, "read_all", 0, SMALL_BODY, framing="chunked", chunk=chunk)
    check(got, "read_all", 0, SMALL_BODY)


@pytest.mark.parametrize("op, arg", [("read_n", 65536), ("read_n", 1000), ("read_all", 0),
                                     ("readline", 0), ("iterate", 0), ("readline_limit", 100)])
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_large_body_is_streamed(server, op, arg, framing):
    got = post(server, op, arg, BIG_BODY, framing=framing, chunk=100_000, timeout=60)
    check(got, op, arg, BIG_BODY)


@pytest.mark.parametrize("op", ["empty", "read_all", "readline", "readlines", "iterate"])
def test_empty_body_with_content_length_zero(server, op):
    got = post(server, op, 0, b"")
    assert got["size"] == 0
    assert set(got["pieces"]) == {""} or got["pieces"] == []


def test_empty_body_chunked(server):
    got = post(server, "empty", 0, b"", framing="chunked")
    assert got["size"] == 0


def test_no_body_on_get(server):
    with RawConn(server.connect()) as conn:
        conn.send(b"GET /empty HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        resp = conn.read_response()
    assert resp.status == 200
    got = json.loads(resp.body)
    assert got["size"] == 0
    assert got["content_length"] in (None, "")


def test_expect_100_continue(server):
    body = b"sent only after 100 Continue"
    with RawConn(server.connect()) as conn:
        conn.send(head("read_all", 0, b"Content-Length: %d\r\nExpect: 100-continue\r\n" % len(body)))
        interim = conn.read_response(skip_interim=False)
        assert interim.version == "HTTP/1.1"
        assert interim.status == 100
        conn.send(body)
        final = conn.read_response()
    assert final.status == 200
    check(json.loads(final.body), "read_all", 0, body)


def test_expect_100_continue_chunked(server):
    with RawConn(server.connect()) as conn:
        conn.send(head("readline", 0, b"Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n"))
        interim = conn.read_response(skip_interim=False)
        assert interim.status == 100
        conn.send(chunked(SMALL_BODY, 9) + b"0\r\n\r\n")
        final = conn.read_response()
    assert final.status == 200
    check(json.loads(final.body), "readline", 0, SMALL_BODY)


@pytest.mark.parametrize("op, arg", [c for c in CASES if c[0] in input_apps.VALIDATED_OPS])
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_wsgiref_validator(validated_server, op, arg, framing):
    mark = len(validated_server.log())
    got = post(validated_server, op, arg, SMALL_BODY, framing=framing)
    check(got, op, arg, SMALL_BODY)
    log = validated_server.log()[mark:]
    assert "AssertionError" not in log
    assert "WSGIWarning" not in log
    assert "without being closed" not in log
