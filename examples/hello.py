"""The smallest WSGI app: ``rsgi examples.hello:app`` (run from the repo root)."""

BODY = b"Hello, World!"


def app(environ, start_response):
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))],
    )
    return [BODY]
