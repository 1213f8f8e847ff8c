"""The framework apps wrapped so that a profiler can tell the app's own work from the server's.

``functools.partial`` adds no Python frame and is called through one C
function (``partial_call``, or ``partial_vectorcall``), whatever way the
server calls the app, so that function's inclusive cost in a callgrind
profile is exactly the app call: the framework's code, the environ reads and
the server's ``start_response``. ``flask``, ``django``.

``flask_timed`` and ``django_timed`` time each app call instead
(``time.perf_counter_ns`` before and after, in the server's own thread) and
answer ``GET /__inapp__`` with the times so far, and how many calls each
thread ran, as JSON (then forget them); ``GET /__inapp_slow__`` is a 30 ms
call (under rsgi with one thread, its standby takes the loop over, and the
app runs on that thread from then on). ``flask_twice`` and ``django_twice``
run each request twice more before the real call, on copies of the environ
and with a ``start_response`` that discards the response, and time both
calls: the first meets the caches as the server left them, the second as
the first left them.
Used by ``bench/inapp.py``.
"""

import functools
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

STATS_PATH = "/__inapp__"
SLOW_PATH = "/__inapp_slow__"  # a 30 ms call: rsgi's standby thread takes the loop over


def _flask():
    from flask_hello import app

    return app


def _django():
    from djangoproj.wsgi import application

    return application


def _discard(status, headers, exc_info=None):
    return lambda data: None


def _timed(app, twice=False):
    samples = []
    warm = []
    threads = {}
    clock = time.perf_counter_ns
    thread_id = threading.get_native_id

    def timed(environ, start_response):
        if environ.get("PATH_INFO") == STATS_PATH:
            # Which thread ran the calls: the process's main thread has the
            # process's id.
            pid = os.getpid()
            named = {("main" if tid == pid else f"thread {tid}"): n for tid, n in threads.items()}
            body = json.dumps({"ns": samples, "warm": warm, "threads": named}).encode()
            samples.clear()
            warm.clear()
            threads.clear()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if environ.get("PATH_INFO") == SLOW_PATH:
            time.sleep(0.03)
            start_response("200 OK", [("Content-Length", "0")])
            return []
        tid = thread_id()
        threads[tid] = threads.get(tid, 0) + 1
        if twice:
            # The same request twice with a start_response that discards
            # the response, back to back: the first call finds the caches
            # as the server left them, the second as the first left them.
            for times in (samples, warm):
                t0 = clock()
                result = app(dict(environ), _discard)
                for _ in result:
                    pass
                times.append(clock() - t0)
                if hasattr(result, "close"):
                    result.close()
            return app(environ, start_response)
        t0 = clock()
        result = app(environ, start_response)
        samples.append(clock() - t0)
        return result

    return timed


_LOADERS = {"flask": _flask, "django": _django}


def __getattr__(name):
    # Only the framework asked for is imported (PEP 562).
    base, _, kind = name.partition("_")
    if base not in _LOADERS or kind not in ("", "timed", "twice"):
        raise AttributeError(name)
    app = _LOADERS[base]()
    app = _timed(app, kind == "twice") if kind else functools.partial(app)
    globals()[name] = app
    return app
