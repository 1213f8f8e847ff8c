"""wsgi.early_hints (gunicorn's environ key): a 103 before the final response."""


def app(environ, start_response):
    hints = environ.get("wsgi.early_hints")
    if hints is not None:
        hints([("Link", "</style.css>; rel=preload; as=style")])
    body = b"ok"
    start_response("200 OK", [("Content-Length", "2")])
    if hints is not None:
        hints([("Link", "</late.css>; rel=preload")])  # after start: still before the head is sent
    return [body]


def late(environ, start_response):
    start_response("200 OK", [])
    yield b"a"
    environ["wsgi.early_hints"]([("Link", "</ignored>")])  # after the head: ignored
    yield b"b"
