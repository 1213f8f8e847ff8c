"""An app whose response iterable's ``close()`` waits for the client.

``close()`` appends ``closing <tag>`` to the file named by the server's
``CLOSE_GATE_LOG``, then waits (60 s at most) until a file ``go-<tag>``
exists beside it, then appends ``closed <tag>``; ``<tag>`` is the request's
query string. The test creates ``go-<tag>`` only once it has read the whole
response, so the response must reach the client before ``close()`` returns,
as a sync worker sends it (Django's ``request_finished`` work runs in
``close()``).
"""

import os
import time

GATE_WAIT = 60.0  # seconds: a bound, never reached when the server is right


def _log(line):
    with open(os.environ["CLOSE_GATE_LOG"], "a") as f:
        f.write(line + "\n")


class Body:
    def __init__(self, tag):
        self.tag = tag

    def __iter__(self):
        yield b"hello"

    def close(self):
        _log(f"closing {self.tag}")
        gate = os.path.join(os.path.dirname(os.environ["CLOSE_GATE_LOG"]), f"go-{self.tag}")
        deadline = time.monotonic() + GATE_WAIT
        while not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.005)
        _log(f"closed {self.tag}")


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return Body(environ.get("QUERY_STRING", ""))
