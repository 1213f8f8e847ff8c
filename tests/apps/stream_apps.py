"""Apps for the back-pressure tests.

    stream_apps:app   /stream yields 64 KiB chunks, up to 256 MiB, counting
                      what it produced; /produced answers that count;
                      /pattern?n=N yields N 64 KiB chunks, chunk i filled
                      with byte i % 251, and counts closes in /closed.
"""

import threading

CHUNK = b"x" * 65536
LIMIT = 4096  # chunks: 256 MiB
_produced = 0
_lock = threading.Lock()
_closed = 0


class Pattern:
    """N chunks of a known pattern; close() is counted."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        for i in range(self.n):
            yield bytes([i % 251]) * 65536

    def close(self):
        global _closed
        with _lock:
            _closed += 1


def app(environ, start_response):
    global _produced
    if environ["PATH_INFO"] == "/produced":
        with _lock:
            body = str(_produced).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    if environ["PATH_INFO"] == "/closed":
        with _lock:
            body = str(_closed).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if environ["PATH_INFO"] == "/pattern":
        n = int(environ["QUERY_STRING"].split("=")[1])
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(n * 65536))])
        return Pattern(n)

    def body():
        global _produced
        for _ in range(LIMIT):
            with _lock:
                _produced += 1
            yield CHUNK

    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return body()
