"""Echo app for the HTTP corpus replay: answers with what the server parsed.

It reads the whole ``wsgi.input`` and returns one JSON object with the request
line parts, every ``HTTP_*`` key plus ``CONTENT_TYPE`` / ``CONTENT_LENGTH``
exactly as they are in the environ, and the body decoded as latin-1.
"""

import json

_HEADER_KEYS = ("CONTENT_TYPE", "CONTENT_LENGTH")


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    report = {
        "method": environ.get("REQUEST_METHOD"),
        "uri": environ.get("RAW_URI"),
        "path_info": environ.get("PATH_INFO"),
        "script_name": environ.get("SCRIPT_NAME"),
        "query": environ.get("QUERY_STRING"),
        "protocol": environ.get("SERVER_PROTOCOL"),
        "headers": {
            key: value
            for key, value in environ.items()
            if key.startswith("HTTP_") or key in _HEADER_KEYS
        },
        "body": body.decode("latin-1"),
    }
    payload = json.dumps(report, sort_keys=True).encode("ascii")
    start_response("200 OK", [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(payload))),
    ])
    return [payload]
