"""An app to put behind a reverse proxy (tests/test_nginx.py).

    /env                   JSON: the environ keys a proxy affects
    /upload                reads wsgi.input in 64 KiB pieces: {"size", "sha256"}
    /gated?gate=PATH       streams "first\\n", waits (up to 20 s) for the file
                           PATH to exist, then streams "second\\n": a proxy
                           that buffers the response never shows "first"
                           while the test holds the gate closed
"""

import hashlib
import json
import os
import time
from urllib.parse import parse_qs

KEYS = ("wsgi.url_scheme", "REMOTE_ADDR", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT",
        "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_CONNECTION", "SERVER_PROTOCOL",
        "SCRIPT_NAME", "PATH_INFO", "CONTENT_LENGTH", "HTTP_TRANSFER_ENCODING")


def _json(start_response, doc):
    body = json.dumps(doc).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _gated(gate):
    yield b"first\n"
    deadline = time.monotonic() + 20
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.02)
    yield b"second\n" if os.path.exists(gate) else b"gate never opened\n"


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/env":
        return _json(start_response, {k: environ.get(k) for k in KEYS})
    if path == "/upload":
        digest, size, stream = hashlib.sha256(), 0, environ["wsgi.input"]
        while True:
            piece = stream.read(65536)
            if not piece:
                break
            size += len(piece)
            digest.update(piece)
        return _json(start_response, {"size": size, "sha256": digest.hexdigest()})
    if path == "/gated":
        gate = parse_qs(environ.get("QUERY_STRING", ""))["gate"][0]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _gated(gate)
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"not found"]
