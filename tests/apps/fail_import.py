"""A module that raises while it is imported: the server must exit, not loop."""

raise RuntimeError("fail_import: this module raises at import time")


def app(environ, start_response):  # pragma: no cover - never reached
    start_response("200 OK", [])
    return [b""]
