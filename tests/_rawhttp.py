"""A tiny HTTP/1.x client over raw sockets, for tests that need to see the
exact bytes: framing, interim responses, pipelining, connection closes.

    conn = RawConn(server.connect())
    conn.send(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    resp = conn.read_response()
    assert resp.status == 200 and resp.body == b"..."
"""

import socket
import time

CRLF = b"\r\n"


class ResponseError(Exception):
    """The bytes on the wire are not a complete, well-formed response."""


class Response:
    def __init__(self, version, status, reason, headers, body, framing, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] in wire order, as str
        self.body = body
        self.framing = framing  # "none" | "length" | "chunked" | "close"
        self.raw_head = raw_head
        self.trailers = []

    def header(self, name, default=None):
        """The value of ``name`` (case-insensitive); repeated ones joined with ", "."""
        values = self.header_list(name)
        return ", ".join(values) if values else default

    def header_list(self, name):
        lname = name.lower()
        return [v for k, v in self.headers if k.lower() == lname]

    def has_header(self, name):
        return bool(self.header_list(name))

    def __repr__(self):
        return "<Response %s %s %r framing=%s body=%d bytes>" % (
            self.version, self.status, self.reason, self.framing, len(self.body))


class RawConn:
    """A socket plus a read buffer, so pipelined responses can be split."""

    def __init__(self, sock, timeout=10.0):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buf = b""
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- low-level reading -------------------------------------------------

    def _fill(self):
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_until(self, marker):
        while marker not in self.buf:
            if not self._fill():
                raise ResponseError("EOF before %r; have %r" % (marker, self.buf[:200]))
        idx = self.buf.index(marker) + len(marker)
        data, self.buf = self.buf[:idx], self.buf[idx:]
        return data

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise ResponseError("EOF after %d of %d bytes" % (len(self.buf), n))
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_to_eof(self):
        while self._fill():
            pass
        data, self.buf = self.buf, b""
        return data

    def is_closed_by_peer(self, timeout=5.0):
        """True if the peer closes (EOF or reset) within ``timeout`` seconds
        and sent nothing more; False if it stays open for that long."""
        if self.buf:
            return False
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        finally:
            self.sock.settimeout(old)
        if data:
            self.buf += data
            return False
        self.eof = True
        return True

    # -- responses ----------------------------------------------------------

    def read_head(self):
        raw = self.read_until(b"\r\n\r\n")
        lines = raw[:-4].split(CRLF)
        try:
            version, rest = lines[0].decode("latin-1").split(" ", 1)
            status_s, _, reason = rest.partition(" ")
            status = int(status_s)
        except ValueError:
            raise ResponseError("bad status line %r" % lines[0])
        headers = []
        for line in lines[1:]:
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise ResponseError("bad header line %r" % line)
            headers.append((name, value.strip(" \t")))
        return version, status, reason, headers, raw

    def read_response(self, method="GET", skip_interim=True):
        """Read one response.  Interim 1xx responses are skipped unless
        ``skip_interim`` is False, in which case they are returned."""
        while True:
            version, status, reason, headers, raw = self.read_head()
            resp = Response(version, status, reason, headers, b"", "none", raw)
            if 100 <= status < 200:
                if skip_interim and status != 101:
                    continue
                return resp
            break
        te = resp.header("transfer-encoding")
        cl = resp.header("content-length")
        if method == "HEAD" or status in (204, 304):
            resp.framing = "none"
        elif te is not None and "chunked" in te.lower():
            resp.framing = "chunked"
            resp.body, resp.trailers = self._read_chunked()
        elif cl is not None:
            resp.framing = "length"
            resp.body = self.read_exact(int(cl))
        else:
            resp.framing = "close"
            resp.body = self.read_to_eof()
        return resp

    def _read_chunked(self):
        body = []
        while True:
            size_line = self.read_until(CRLF)
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                break
            body.append(self.read_exact(size))
            if self.read_exact(2) != CRLF:
                raise ResponseError("chunk not followed by CRLF")
        trailers = []
        while True:
            line = self.read_until(CRLF)
            if line == CRLF:
                break
            name, _, value = line[:-2].decode("latin-1").partition(":")
            trailers.append((name, value.strip()))
        return b"".join(body), trailers


def request(server, data, method="GET", timeout=10.0):
    """Send raw ``data`` on a fresh connection and read one response."""
    with RawConn(server.connect(timeout=timeout), timeout=timeout) as conn:
        conn.send(data)
        return conn.read_response(method=method)


def get(server, path="/", headers=(), version="HTTP/1.1", method="GET", body=b"",
        close=True, timeout=10.0):
    """Build a simple request and read its response on a fresh connection."""
    lines = ["%s %s %s" % (method, path, version), "Host: 127.0.0.1"]
    lines += ["%s: %s" % h for h in headers]
    if body:
        lines.append("Content-Length: %d" % len(body))
    if close and version == "HTTP/1.1":
        lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    return request(server, data, method=method, timeout=timeout)


def wait_for(predicate, timeout=20.0, interval=0.05):
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return value
        time.sleep(interval)
