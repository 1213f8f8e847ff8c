"""Apps for test_metrics.py, served under one router by the first path
segment:

    /              200 "ok"
    /bytes?n=N     200 with an N-byte body
    /raise         the app raises: 500
    /hold          appends the worker's PID to $STARTED_FILE, then sleeps
                   until the client goes (or the worker is killed)
    /grow          keeps ~20 MiB more per request, for --max-worker-memory
    /stream        64 MiB in 64 KiB chunks from a generator (a client that
                   does not read gets its response paused)

Every response carries X-Worker-Pid.
"""

import os
import time

_hoard = []


def _answer(start_response, body, status="200 OK"):
    data = body if isinstance(body, bytes) else body.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(data))),
                            ("X-Worker-Pid", str(os.getpid()))])
    return [data]


def router(environ, start_response):
    name = environ.get("PATH_INFO", "/").strip("/")
    if name == "":
        return _answer(start_response, "ok")
    if name == "bytes":
        n = int(environ.get("QUERY_STRING", "n=0").split("=", 1)[1])
        return _answer(start_response, b"x" * n)
    if name == "raise":
        raise RuntimeError("raised on purpose for the 5xx counter")
    if name == "hold":
        started = os.environ.get("STARTED_FILE")
        if started:
            with open(started, "a") as f:
                f.write("%d\n" % os.getpid())
        while True:
            time.sleep(0.2)
    if name == "stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (b"x" * 65536 for _ in range(1024))
    if name == "grow":
        _hoard.append(b"\x01" * (20 << 20))
        return _answer(start_response, "grew")
    return _answer(start_response, "no route", status="404 Not Found")
