"""Bare WSGI apps for the benchmark: the server's own cost, with almost no app.

Each callable is one benchmark app (``plain:hello`` and so on). Bodies are built
once at import, so a request costs only the server's work plus one call.
"""

HELLO = b"Hello, World!"
BODY_10K = b"x" * (10 * 1024)
BODY_1M = b"x" * (1024 * 1024)


def _fixed(body):
    headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]

    def app(environ, start_response):
        start_response("200 OK", list(headers))
        return [body]

    return app


hello = _fixed(HELLO)
body_10k = _fixed(BODY_10K)
body_1m = _fixed(BODY_1M)


def echo(environ, start_response):
    """Read the whole request body and send it back (a GET gets an empty 200)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    start_response(
        "200 OK",
        [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))],
    )
    return [body]
