"""The corpus echo app (tests/apps/echo.py) as an ASGI app: the same JSON
report, built from the scope, so the request corpus checks that the ASGI
worker sees what the WSGI worker sees (tests/test_asgi_corpus.py).

Header names map to environ-style keys and repeats are joined as the WSGI
environ joins them; the path is reported from ``raw_path`` (percent-decoded,
latin-1) as ``PATH_INFO`` is, and checked against ``path``."""

import json
from urllib.parse import unquote, unquote_to_bytes


def _key(name):
    name = name.upper()
    if name == "CONTENT-TYPE":
        return "CONTENT_TYPE"
    if name == "CONTENT-LENGTH":
        return "CONTENT_LENGTH"
    return "HTTP_" + name.replace("-", "_")


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        event = await receive()
        if event["type"] != "http.request":
            return
        body += event.get("body", b"")
        if not event.get("more_body"):
            break
    headers = {}
    for name, value in scope["headers"]:
        assert name == name.lower(), name
        key, value = _key(name.decode("latin-1")), value.decode("latin-1")
        if key in headers:
            headers[key] += ("; " if key == "HTTP_COOKIE" else ",") + value
        else:
            headers[key] = value
    raw_path = scope["raw_path"].decode("latin-1")
    report = {
        "method": scope["method"],
        "path_info": unquote_to_bytes(raw_path).decode("latin-1"),
        "path_matches": scope["path"] == unquote(raw_path, errors="replace"),
        "query": scope["query_string"].decode("latin-1"),
        "protocol": "HTTP/" + scope["http_version"],
        "headers": headers,
        "body": body.decode("latin-1"),
    }
    payload = json.dumps(report, sort_keys=True).encode("ascii")
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
