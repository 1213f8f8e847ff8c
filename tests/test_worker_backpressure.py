"""Response back-pressure: a client that stops reading stops the app from
producing, so a slow reader never grows the worker's memory without bound."""

import socket
import time

import pytest

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


def _produced(server):
    s = _get(server, "/produced")
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
    while len(body) < length:
        body += s.recv(4096)
    s.close()
    return int(body)


@pytest.mark.timeout(60)
def test_stalled_reader_stops_the_app(start_server):
    if SERVER_KIND == "gunicorn":
        pytest.skip("gunicorn writes from the app thread: covered for rsgi only")
    server = start_server("stream_apps:app", "-w", "1", "--threads", "2")
    stalled = _get(server, "/stream", rcvbuf=65536)
    # Read the head and a little body, then stop reading.
    assert stalled.recv(1024).startswith(b"HTTP/1.1 200")
    time.sleep(2.0)
    first = _produced(server)
    time.sleep(1.0)
    second = _produced(server)
    # Unbounded buffering would have produced all 256 MiB by now; with
    # back-pressure the app is held to what the buffers hold (well under
    # 32 MiB) and makes no more progress while the client does not read.
    assert first * CHUNK < 32 * 1024 * 1024, first
    assert second - first <= 2, (first, second)
    # Reading again lets the response continue, intact.
    got = 0
    stalled.settimeout(20)
    deadline = time.monotonic() + 30
    while got < 8 * 1024 * 1024 and time.monotonic() < deadline:
        chunk = stalled.recv(1 << 20)
        if not chunk:
            break
        got += len(chunk)
    assert got >= 8 * 1024 * 1024
    stalled.close()
    assert _produced(server) > second
