"""An app that keeps the objects a request handed it after the request ends.

``/keep`` stores its ``start_response``, the ``write`` callable it returned,
``wsgi.early_hints`` and ``wsgi.input``; ``/check`` (reading its body) says
whether its own objects are the kept ones, and calls the kept ``write`` and
``early_hints`` to see that they cannot reach the current response.
"""

import json

KEPT = {}


def app(environ, start_response):
    if environ["PATH_INFO"] == "/keep":
        KEPT["start_response"] = start_response
        KEPT["early_hints"] = environ["wsgi.early_hints"]
        KEPT["input"] = environ["wsgi.input"]
        KEPT["write"] = start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        return [b"kept"]
    body = environ["wsgi.input"].read()
    report = {
        "body": body.decode("latin-1"),
        "same_start_response": KEPT.get("start_response") is start_response,
        "same_early_hints": KEPT.get("early_hints") is environ["wsgi.early_hints"],
        "same_input": KEPT.get("input") is environ["wsgi.input"],
    }
    for name, call in (("old_write", lambda: KEPT["write"](b"LEAK")),
                       ("old_early_hints", lambda: KEPT["early_hints"]([("Link", "</leak>")]))):
        if name.replace("old_", "") not in KEPT:
            continue
        try:
            call()
            report[name] = "returned"
        except Exception as exc:  # noqa: BLE001 - reported to the test
            report[name] = type(exc).__name__
    data = json.dumps(report).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
