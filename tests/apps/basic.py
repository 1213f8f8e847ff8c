"""Plain apps for the master/CLI suites.

    basic:app                 "app" plus the worker PID in X-Worker-Pid
    basic                     the same module alone means basic:application
    basic:make_app()          a factory; make_app("hi", n=2) answers "hi:2"
    basic:slow                sleeps (query string seconds, default 2), then 200;
                              first appends its PID to $SLOW_STARTED if set
    basic:modules             the worker's loaded modules named in the query
                              string (comma-separated), one per line
    basic:main_thread         "main" when the request runs on what `threading`
                              takes for the main thread, else "elsewhere"
"""

import os
import sys
import time


def _answer(start_response, body):
    start_response("200 OK", [
        ("Content-Type", "text/plain"),
        ("Content-Length", str(len(body))),
        ("X-Worker-Pid", str(os.getpid())),
    ])
    return [body]


def app(environ, start_response):
    return _answer(start_response, b"app")


def application(environ, start_response):
    return _answer(start_response, b"application")


def make_app(greeting="factory", n=0):
    def factory_app(environ, start_response):
        return _answer(start_response, ("%s:%s" % (greeting, n)).encode())

    return factory_app


def slow(environ, start_response):
    seconds = float(environ.get("QUERY_STRING") or "2")
    started = os.environ.get("SLOW_STARTED")
    if started:
        # Tell the test the request is in flight (it waits for this file).
        with open(started, "a") as f:
            f.write("%d\n" % os.getpid())
    time.sleep(seconds)
    return _answer(start_response, b"slept")


not_callable = "this attribute is not a WSGI app"


def modules(environ, start_response):
    names = [n for n in environ.get("QUERY_STRING", "").split(",") if n]
    return _answer(start_response, "".join(f"{n}\n" for n in names if n in sys.modules).encode())


def main_thread(environ, start_response):
    import threading  # first imported here, on the request's thread, unless the worker did

    here = threading.current_thread() is threading.main_thread()
    return _answer(start_response, b"main" if here else b"elsewhere")
