"""Apps that read ``wsgi.input`` in one particular way and report what they got.

``input_apps:app`` routes on the first path segment to an operation (see
``OPS``); the query string is the operation's numeric argument.  The answer is
JSON: the pieces each call returned (as latin-1 text, only for small bodies),
their sizes, the total size and the SHA-256 of the concatenation.

The tests run the same ``run_op`` over ``io.BytesIO`` to get the expected
answer, so "what a file would do" is the reference.

``input_apps:validated`` is the same app wrapped in ``wsgiref.validate``.
"""

import hashlib
import json
from wsgiref.validate import validator

SMALL = 64 * 1024


def _read_n(stream, n):
    out = []
    while True:
        piece = stream.read(n)
        out.append(piece)
        if not piece:
            return out


def _read_all(stream, _):
    return [stream.read(), stream.read()]


def _read_minus_one(stream, _):
    return [stream.read(-1), stream.read(-1)]


def _readline(stream, _):
    out = []
    while True:
        line = stream.readline()
        out.append(line)
        if not line:
            return out


def _readline_limit(stream, n):
    out = []
    while True:
        line = stream.readline(n)
        out.append(line)
        if not line:
            return out


def _readlines(stream, _):
    return list(stream.readlines())


def _readlines_hint(stream, n):
    # The hint may be honoured or ignored (PEP 3333); the rest is read after.
    return list(stream.readlines(n)) + list(stream.readlines())


def _iterate(stream, _):
    return [line for line in stream]


def _mixed(stream, n):
    return [stream.readline(), stream.read(n), stream.readline(n), stream.read(0)] + \
        _read_n(stream, 1000)


def _empty(stream, _):
    return [stream.read(), stream.read(10), stream.readline(), stream.readline(5)] + \
        list(stream.readlines()) + [line for line in stream]


OPS = {
    "read_n": _read_n,
    "read_all": _read_all,
    "read_minus_one": _read_minus_one,
    "readline": _readline,
    "readline_limit": _readline_limit,
    "readlines": _readlines,
    "readlines_hint": _readlines_hint,
    "iterate": _iterate,
    "mixed": _mixed,
    "empty": _empty,
}

# Operations wsgiref.validate accepts: it insists on read(size) with an argument.
VALIDATED_OPS = ("read_n", "readline", "readline_limit", "readlines", "readlines_hint",
                 "iterate")


def run_op(op, stream, arg):
    pieces = OPS[op](stream, arg)
    data = b"".join(pieces)
    return {
        "pieces": [p.decode("latin-1") for p in pieces] if len(data) <= SMALL else None,
        "sizes": [len(p) for p in pieces],
        "all_bytes": all(type(p) is bytes for p in pieces),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def app(environ, start_response):
    op = environ["PATH_INFO"].strip("/")
    if op not in OPS:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"unknown op"]
    arg = int(environ.get("QUERY_STRING") or "0")
    result = run_op(op, environ["wsgi.input"], arg)
    result["content_length"] = environ.get("CONTENT_LENGTH")
    result["input_terminated"] = environ.get("wsgi.input_terminated")
    body = json.dumps(result).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


validated = validator(app)
