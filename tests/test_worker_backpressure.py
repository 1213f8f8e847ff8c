"""Response back-pressure: a client that stops reading stops the app from
producing, so a slow reader never grows the worker's memory without bound."""

import socket
import time

import pytest

import conftest
from conftest import SERVER_KIND

CHUNK = 65536


def _get(server, path, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect((server.host, server.port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    return s


def _small_answer(server, path):
    s = _get(server, path)
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
    while len(body) < length:
        body += s.recv(4096)
    s.close()
    return body


def _produced(server):
    return int(_small_answer(server, "/produced"))


def _held(server):
    """What the app had produced once it stopped: /produced polled until
    three answers half a second apart agree (or 30 s). Another client's
    request is answered meanwhile, or its socket times out."""
    try:
        answers = [_produced(server)]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.5)
            answers.append(_produced(server))
            if len(set(answers[-3:])) == 1 and len(answers) >= 3:
                return answers[-1]
    except socket.timeout:
        pytest.fail("another client waited for the stalled one")
    pytest.fail("the app kept producing for a client that does not read: %s" % answers)


def _read_again(sock, want):
    """Read from a stalled client's socket until `want` bytes came (or 30 s)."""
    got = 0
    sock.settimeout(20)
    deadline = time.monotonic() + 30
    while got < want and time.monotonic() < deadline:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        got += len(chunk)
    return got


def _stalled_stream(start_server, threads, kind="sync"):
    """A one-worker server and a client of its /stream that read the head
    and a little body, then stopped reading (rsgi only: gunicorn's worker
    writes from the app thread)."""
    if SERVER_KIND == "gunicorn":
        pytest.skip("gunicorn writes from the app thread: covered for rsgi only")
    server = start_server("stream_apps:app", "-w", "1", "--threads", threads, *conftest.kind_args(kind))
    stalled = _get(server, "/stream", rcvbuf=65536)
    assert stalled.recv(1024).startswith(b"HTTP/1.1 200")
    return server, stalled


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", conftest.WORKER_KINDS)
def test_stalled_reader_stops_the_app(start_server, kind):
    server, stalled = _stalled_stream(start_server, "2", kind)
    first = _held(server)
    time.sleep(1.0)
    second = _produced(server)
    # Unbounded buffering would have produced all 256 MiB by now; with
    # back-pressure the app is held to what the buffers hold (well under
    # 32 MiB) and makes no more progress while the client does not read.
    assert first * CHUNK < 32 * 1024 * 1024, first
    assert second - first <= 2, (first, second)
    # Reading again lets the response continue, intact.
    got = _read_again(stalled, 8 * 1024 * 1024)
    assert got >= 8 * 1024 * 1024
    stalled.close()
    assert _produced(server) > second



def _read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return data.split(b"\r\n\r\n", 1)


@pytest.mark.timeout(60)
def test_paused_reader_gets_the_whole_response_with_one_thread(start_server):
    # With one executor the app runs on the loop thread, which then writes a
    # full output window to the socket itself: a reader that pauses and
    # resumes must still get every byte, in order.
    server = start_server("stream_apps:app", "-w", "1", "--threads", "1")
    n = 160  # 10 MiB, far past the output window and the socket buffers
    s = _get(server, f"/pattern?n={n}", rcvbuf=65536)
    head, body = _read_head(s)
    assert head.startswith(b"HTTP/1.1 200")
    while len(body) < 1 << 20:
        body += s.recv(65536)
    time.sleep(1.5)
    s.settimeout(20)
    while len(body) < n * CHUNK:
        chunk = s.recv(1 << 20)
        assert chunk, len(body)
        body += chunk
    s.close()
    assert len(body) == n * CHUNK
    for i in range(n):
        part = body[i * CHUNK:(i + 1) * CHUNK]
        assert part == bytes([i % 251]) * CHUNK, i
    # The worker goes on serving, and close() ran.
    assert int(_small_answer(server, "/closed")) >= 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", conftest.WORKER_KINDS)
def test_reader_leaving_mid_response_stops_the_app_with_one_thread(start_server, kind):
    server = start_server("stream_apps:app", "-w", "1", "--threads", "1", *conftest.kind_args(kind))
    before = int(_small_answer(server, "/closed"))
    s = _get(server, "/pattern?n=4000", rcvbuf=65536)  # 250 MiB
    head, body = _read_head(s)
    assert head.startswith(b"HTTP/1.1 200")
    while len(body) < 1 << 20:
        body += s.recv(65536)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()  # reset: the server's next write fails
    # The app is stopped and closed, and the worker serves the next client.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if int(_small_answer(server, "/closed")) > before:
            break
        time.sleep(0.1)
    assert int(_small_answer(server, "/closed")) == before + 1


@pytest.mark.timeout(60)
def test_stalled_reader_does_not_hold_the_only_python_thread(start_server):
    # One worker, one Python thread: the stalled client's response pauses
    # (its iterable is not advanced) and the thread serves others meanwhile.
    server, stalled = _stalled_stream(start_server, "1")
    first = _held(server)
    time.sleep(1.0)
    second = _produced(server)
    assert first * CHUNK < 32 * 1024 * 1024, first
    assert second - first <= 2, (first, second)
    # The stalled client reads again: its response goes on, intact.
    got = _read_again(stalled, 8 * 1024 * 1024)
    assert got >= 8 * 1024 * 1024
    stalled.close()
    assert _produced(server) > second


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", conftest.WORKER_KINDS)
def test_paused_response_is_closed_when_its_client_leaves(start_server, kind):
    if SERVER_KIND == "gunicorn":
        pytest.skip("gunicorn's worker writes from the app thread: rsgi only")
    server = start_server("stream_apps:app", "-w", "1", "--threads", "1", *conftest.kind_args(kind))
    before = int(_small_answer(server, "/closed"))
    s = _get(server, "/pattern?n=4000", rcvbuf=65536)
    head, body = _read_head(s)
    assert head.startswith(b"HTTP/1.1 200")
    time.sleep(1.0)  # the response pauses on its full window
    assert int(_small_answer(server, "/closed")) == before
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and int(_small_answer(server, "/closed")) == before:
        time.sleep(0.1)
    assert int(_small_answer(server, "/closed")) == before + 1
