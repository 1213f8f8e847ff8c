"""Apps for tests/test_static_files.py.

    static_apps:app    "app:" plus PATH_INFO, so a test can tell the app's
                       answers from the static files'; /block writes the
                       file named by $BLOCK_STARTED, then waits (at most
                       30 s) until the file named by $BLOCK_RELEASE exists.
"""

import os
import time


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/block":
        with open(os.environ["BLOCK_STARTED"], "w") as f:
            f.write("started")
        deadline = time.monotonic() + 30
        while not os.path.exists(os.environ["BLOCK_RELEASE"]) and time.monotonic() < deadline:
            time.sleep(0.01)
    body = ("app:" + path).encode("latin-1")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
