"""Small WSGI apps for the start_response and response-body suites.

Each app is a module attribute (``pep3333:write_callable``) and is also
reachable through the router ``pep3333:app`` by its name as the first path
segment (``GET /write_callable``), so one server can serve a whole suite.

Apps that track ``close()`` append lines to the file named by the server's
``CLOSE_LOG`` environment variable: ``close <tag>`` when close() is called,
``done <tag>`` when the body ran to its end, where ``<tag>`` is the request's
query string.
"""

import hashlib
import io
import os
import sys
import tempfile
import time

TEXT = [("Content-Type", "text/plain")]
HELLO = b"Hello, World!"

# 1 MiB of known bytes for the file_wrapper apps; the tests rebuild it.
FILE_BYTES = bytes(range(256)) * 4096
BIG = 8 * 1024 * 1024
BIG_CHUNK = 64 * 1024


def big_bytes():
    """8 MiB of deterministic, non-repeating-per-chunk bytes."""
    out = bytearray()
    block = 0
    while len(out) < BIG:
        out += hashlib.sha256(str(block).encode()).digest() * (BIG_CHUNK // 32)
        block += 1
    return bytes(out[:BIG])


def _log(line):
    path = os.environ.get("CLOSE_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def _tag(environ):
    return environ.get("QUERY_STRING", "") or "-"


def _with_length(body, extra=()):
    return TEXT + [("Content-Length", str(len(body)))] + list(extra)


# -- plain -------------------------------------------------------------------

def hello(environ, start_response):
    start_response("200 OK", _with_length(HELLO))
    return [HELLO]


# -- start_response ------------------------------------------------------------

def write_callable(environ, start_response):
    write = start_response("200 OK", TEXT)
    write(b"one ")
    write(b"two ")
    return [b"three"]


def write_only(environ, start_response):
    body = b"written-" * 100
    write = start_response("200 OK", _with_length(body))
    for i in range(0, len(body), 100):
        write(body[i:i + 100])
    return []


def exc_info_before(environ, start_response):
    start_response("200 OK", TEXT + [("X-First", "1")])
    try:
        raise ValueError("handled before any byte was sent")
    except ValueError:
        start_response(
            "503 Service Unavailable",
            _with_length(b"replaced", [("X-Replaced", "yes")]),
            sys.exc_info(),
        )
    return [b"replaced"]


def exc_info_after(environ, start_response):
    start_response("200 OK", TEXT + [("Content-Length", "1000")])

    def body():
        yield b"partial-"
        try:
            raise ValueError("exc-info-after-marker")
        except ValueError:
            # Headers are out: PEP 3333 says start_response must re-raise.
            start_response("500 Internal Server Error", TEXT, sys.exc_info())
        yield b"must-not-be-sent"

    return body()


def exc_info_after_chunked(environ, start_response):
    start_response("200 OK", TEXT)

    def body():
        yield b"partial-"
        try:
            raise ValueError("exc-info-after-marker")
        except ValueError:
            start_response("500 Internal Server Error", TEXT, sys.exc_info())
        yield b"must-not-be-sent"

    return body()


def double_start(environ, start_response):
    start_response("200 OK", TEXT)
    start_response("201 Created", TEXT)
    return [b"must-not-be-sent"]


def bad_header_name(environ, start_response):
    start_response("200 OK", TEXT + [("X-Bad\r\nInjected", "yes")])
    return [b"must-not-be-sent"]


def bad_header_name_space(environ, start_response):
    start_response("200 OK", TEXT + [("X Bad", "yes")])
    return [b"must-not-be-sent"]


def bad_header_value(environ, start_response):
    start_response("200 OK", TEXT + [("X-Bad", "ok\r\nInjected: yes")])
    return [b"must-not-be-sent"]


def bad_header_value_lf(environ, start_response):
    start_response("200 OK", TEXT + [("X-Bad", "ok\nInjected: yes")])
    return [b"must-not-be-sent"]


def bad_status(environ, start_response):
    start_response("two hundred", TEXT)
    return [b"must-not-be-sent"]


def hop_by_hop(environ, start_response):
    body = b"hop-by-hop"
    start_response("200 OK", _with_length(body, [
        ("Connection", "x-app-connection-token"),
        ("Keep-Alive", "timeout=999"),
        ("Transfer-Encoding", "x-app-coding"),
        ("Upgrade", "x-app-protocol"),
        ("Server", "x-app-server"),
        ("Date", "Mon, 01 Jan 1990 00:00:00 GMT"),
        ("X-Kept", "yes"),
    ]))
    return [body]


def lazy_status(environ, start_response):
    def body():
        start_response("201 Created", TEXT + [("X-Lazy", "yes")])
        yield b"lazy-"
        yield b"body"

    return body()


def lazy_status_empty(environ, start_response):
    def body():
        start_response("202 Accepted", TEXT + [("Content-Length", "0"), ("X-Lazy", "yes")])
        return
        yield  # pragma: no cover - makes this a generator

    return body()


def raises(environ, start_response):
    raise RuntimeError("app-exception-marker")


def raises_after_start(environ, start_response):
    start_response("200 OK", TEXT)
    raise RuntimeError("app-exception-marker")


def raises_before_first_chunk(environ, start_response):
    def body():
        start_response("200 OK", TEXT)
        raise RuntimeError("app-exception-marker")
        yield b"never"  # pragma: no cover

    return body()


def yields_str(environ, start_response):
    start_response("200 OK", TEXT)
    return ["text is not bytes"]


# -- response bodies ---------------------------------------------------------

class Tracked:
    """An iterable whose close() is logged; ``mode`` picks how it ends."""

    def __init__(self, tag, mode):
        self.tag = tag
        self.mode = mode
        self.produced = 0

    def __iter__(self):
        if self.mode == "raise_first":
            raise RuntimeError("close-tracking-first-marker")
        if self.mode == "forever":
            # Long enough that only a client disconnect stops it early.
            for _ in range(4000):
                yield b"f" * BIG_CHUNK
                time.sleep(0.005)
        else:
            for part in (b"a" * 10, b"b" * 10, b"c" * 10):
                yield part
                if self.mode == "raise_mid":
                    raise RuntimeError("close-tracking-mid-marker")
        _log("done " + self.tag)

    def close(self):
        _log("close " + self.tag)


def _tracked(mode, length=None):
    def app(environ, start_response):
        headers = list(TEXT)
        if length is not None:
            headers.append(("Content-Length", str(length)))
        start_response("200 OK", headers)
        return Tracked(_tag(environ), mode)

    return app


close_ok = _tracked("ok", 30)
close_ok_chunked = _tracked("ok")
close_raise_mid = _tracked("raise_mid")
close_raise_first = _tracked("raise_first")
close_forever = _tracked("forever")


def chunks(environ, start_response):
    start_response("200 OK", TEXT)
    return iter([b"first,", b"", b"second,", b"third"])


def truncate(environ, start_response):
    start_response("200 OK", TEXT + [("Content-Length", "5")])
    return [b"hello", b" world, too much"]


def short(environ, start_response):
    start_response("200 OK", TEXT + [("Content-Length", "100")])
    return [b"only-ten!!"]


def no_content(environ, start_response):
    start_response("204 No Content", [("X-Status", "204")])
    return [b"body-that-must-not-be-sent"]


def not_modified(environ, start_response):
    start_response("304 Not Modified", [("ETag", '"abc"')])
    return [b"body-that-must-not-be-sent"]


def _data_file():
    """A real file holding FILE_BYTES (shared by every worker and test run)."""
    path = os.path.join(tempfile.gettempdir(), "rsgi-test-pep3333-file.bin")
    try:
        if os.path.getsize(path) == len(FILE_BYTES):
            return path
    except OSError:
        pass
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(FILE_BYTES)
    os.replace(tmp, path)
    return path


def file_wrapper(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](open(_data_file(), "rb"), 32768)


def file_wrapper_length(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(FILE_BYTES)))])
    return environ["wsgi.file_wrapper"](open(_data_file(), "rb"))


def file_wrapper_partial(environ, start_response):
    # Content-Length smaller than the file: only that many bytes go out.
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", "1000")])
    return environ["wsgi.file_wrapper"](open(_data_file(), "rb"))


class TrackedBytesIO(io.BytesIO):
    tag = "-"

    def close(self):
        _log("close " + self.tag)
        super().close()


def file_wrapper_bytesio(environ, start_response):
    stream = TrackedBytesIO(FILE_BYTES)
    stream.tag = _tag(environ)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](stream, 8192)


_BIG = None


def big(environ, start_response):
    global _BIG
    if _BIG is None:
        _BIG = big_bytes()
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(_BIG)))])
    return [_BIG]


def big_chunked(environ, start_response):
    global _BIG
    if _BIG is None:
        _BIG = big_bytes()
    data = _BIG
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return (data[i:i + BIG_CHUNK] for i in range(0, len(data), BIG_CHUNK))


def slow(environ, start_response):
    seconds = float(environ.get("QUERY_STRING") or "2")
    time.sleep(seconds)
    body = b"slept %.1f" % seconds
    start_response("200 OK", _with_length(body))
    return [body]


# -- router ------------------------------------------------------------------

ROUTES = {
    name: obj
    for name, obj in list(globals().items())
    if callable(obj) and not name.startswith("_") and not isinstance(obj, type)
    and name not in ("big_bytes",)
}


def app(environ, start_response):
    name = environ.get("PATH_INFO", "/").strip("/").split("/")[0] or "hello"
    target = ROUTES.get(name)
    if target is None:
        body = b"no such app: " + name.encode("latin-1")
        start_response("404 Not Found", _with_length(body))
        return [body]
    return target(environ, start_response)
