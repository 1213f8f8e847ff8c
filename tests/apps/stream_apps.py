"""Apps for the back-pressure tests.

    stream_apps:app   /stream yields 64 KiB chunks, up to 256 MiB, counting
                      what it produced; /produced answers that count.
"""

import threading

CHUNK = b"x" * 65536
LIMIT = 4096  # chunks: 256 MiB
_produced = 0
_lock = threading.Lock()


def app(environ, start_response):
    global _produced
    if environ["PATH_INFO"] == "/produced":
        with _lock:
            body = str(_produced).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    def body():
        global _produced
        for _ in range(LIMIT):
            with _lock:
                _produced += 1
            yield CHUNK

    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return body()
