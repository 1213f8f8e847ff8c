"""Reads ``wsgi.input`` in fixed-size chunks and answers with the byte count and
the SHA-256 of what it read, without ever holding the whole body in memory.

    rsgi examples.uploads:app
    curl -T big.iso http://127.0.0.1:8000/
"""

import hashlib
import json

CHUNK = 64 * 1024


def app(environ, start_response):
    stream = environ["wsgi.input"]
    digest = hashlib.sha256()
    size = 0
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        size += len(chunk)
        digest.update(chunk)
    body = json.dumps({"size": size, "sha256": digest.hexdigest()}).encode()
    start_response(
        "200 OK",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
