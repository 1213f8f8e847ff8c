"""Apps for the configuration, hooks and access-log suites (test_config.py,
test_hooks.py, test_access_log.py).

    cfgapp:app        JSON {"import_pid", "pid", "env": {NAME: os.environ.get(NAME)}}
                      for the comma-separated NAMEs in the query string
    cfgapp:routes     / and /a/b...: "hello world" (text/plain, X-Out: outval)
                      /slow          sleeps 0.3 s, then the same
                      /hang          sleeps 30 s (for --timeout and worker_abort)
                      /stream        201, two chunks "abc" "defg", no Content-Length
                      /empty         204, no body
                      /missing       404 "nope"
    cfgapp:make_app(greeting)   a factory answering the greeting

Both apps set ``environ["cfgapp.seen"] = "yes"``, so a ``post_request`` hook
can check that it receives the environ the app saw.
"""

import json
import os
import time

# Where the module was imported: the master with --preload, else the worker.
IMPORT_PID = os.getpid()


def app(environ, start_response):
    environ["cfgapp.seen"] = "yes"
    names = [n for n in environ.get("QUERY_STRING", "").split(",") if n]
    body = json.dumps({
        "import_pid": IMPORT_PID,
        "pid": os.getpid(),
        "env": {name: os.environ.get(name) for name in names},
    }).encode()
    start_response("200 OK", [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
    ])
    return [body]


def routes(environ, start_response):
    environ["cfgapp.seen"] = "yes"
    path = environ["PATH_INFO"]
    if path == "/stream":
        start_response("201 Created", [("Content-Type", "text/x-stream; charset=utf-8")])
        return [b"abc", b"defg"]
    if path == "/empty":
        start_response("204 No Content", [])
        return []
    if path == "/missing":
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        return [b"nope"]
    if path == "/boom":
        raise RuntimeError("cfgapp fails on purpose")
    if path == "/slow":
        time.sleep(0.3)
    if path == "/hang":
        time.sleep(30)
    body = b"hello world"
    start_response("200 OK", [
        ("Content-Type", "text/plain"),
        ("Content-Length", str(len(body))),
        ("X-Out", "outval"),
    ])
    return [body]


def make_app(greeting="factory"):
    def factory_app(environ, start_response):
        body = greeting.encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    return factory_app
