"""An app that keeps the objects a request handed it after the request ends.

``/keep`` stores its ``start_response``, the ``write`` callable it returned,
``wsgi.early_hints`` and ``wsgi.input``; ``/check`` (reading its body) says
whether its own objects are the kept ones, and calls the kept ``write`` and
``early_hints`` to see that they cannot reach the current response.
``/write-later`` answers at once and leaves a thread that keeps calling
that response's ``write`` after it ended (nothing drains it, so the thread
ends up waiting inside ``write`` for good); it creates the file named by
``KEPT_MARK`` (holding its native thread id) just before the write that
waits.
"""

import json
import os
import threading
import time

KEPT = {}


def _write_later(write):
    time.sleep(0.2)
    KEPT["later_calls"] = 0
    try:
        for _ in range(8):
            write(b"x" * 100_000)
            KEPT["later_calls"] += 1
            if KEPT["later_calls"] == 2 and os.environ.get("KEPT_MARK"):
                # The window is nearly full: the next write waits. The mark
                # names this thread (written whole) so a test can see it wait.
                mark = os.environ["KEPT_MARK"]
                with open(mark + ".tmp", "w") as f:
                    f.write(str(threading.get_native_id()))
                os.replace(mark + ".tmp", mark)
    except Exception as exc:  # noqa: BLE001 - reported by /calls
        KEPT["later_calls"] = type(exc).__name__


def app(environ, start_response):
    if environ["PATH_INFO"] == "/write-later":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        threading.Thread(target=_write_later, args=(write,), daemon=True).start()
        return [b"started"]
    if environ["PATH_INFO"] == "/calls":
        data = str(KEPT.get("later_calls")).encode()
        start_response("200 OK", [("Content-Length", str(len(data)))])
        return [data]
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
