"""The response reaches the client before the iterable's ``close()`` returns.

A sync worker writes the response, then calls ``close()``; so does rsgi, also
when the app runs on the I/O loop's own thread (``--threads 1``), where the
loop used to write the response only after ``close()`` and the request's end
(bench/PROFILE.md, "In-app slowdown"). ``close_order:app``'s ``close()`` waits
until the test has read the whole response.
"""

import time

import pytest

import conftest

READ_TIMEOUT = 30.0


def read_response(sock):
    """One response with a Content-Length body: (head, body)."""
    buf = b""
    deadline = time.monotonic() + READ_TIMEOUT
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        assert chunk, "closed before the end of the head"
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:] if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        assert chunk, "closed in the body"
        body += chunk
    return head, body


def wait_for_line(path, line, timeout=READ_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and line in path.read_text().splitlines():
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("threads", ["1", "2"])
def test_response_is_out_before_close_returns(start_server, tmp_path, threads):
    log = tmp_path / "close.log"
    server = start_server("close_order:app", "--threads", threads, env={"CLOSE_GATE_LOG": str(log)})
    with server.connect() as sock:
        for tag in ("first", "second"):
            sock.sendall(f"GET /?{tag} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head, body = read_response(sock)
            assert head.startswith(b"HTTP/1.1 200"), head
            assert body == b"hello"
            # The whole response arrived while close() still waits for us.
            assert wait_for_line(log, f"closing {tag}")
            assert f"closed {tag}" not in log.read_text().splitlines()
            (tmp_path / f"go-{tag}").touch()
            assert wait_for_line(log, f"closed {tag}")
