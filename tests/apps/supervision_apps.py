"""Apps for the supervision suites (test_signals.py, test_supervision.py).

Each callable can be served on its own; ``router`` serves all of them under
one server, by the first path segment, so a test can keep one worker stuck in
``/sleep_forever`` while checking that ``/`` still answers elsewhere.

    supervision_apps:app            fast 200 "ok"
    supervision_apps:slow           sleeps ?s= seconds (default 1), then 200 "slept"
    supervision_apps:spin           pure-Python busy loop holding the GIL, in
                                    spin_forever_marker(); ?s= seconds, or forever
    supervision_apps:sleep_forever  time.sleep() loop in sleep_forever_marker()
    supervision_apps:grow           keeps ~20 MiB more per request (module list);
                                    answers the resident size in X-Rss-Mib
    supervision_apps:version        VERSION, read at import time from the file
                                    named by $VERSION_FILE ("unset" without it)
    supervision_apps:errors         writes ?msg= plus a newline to wsgi.errors
    supervision_apps:procinfo       "pid ppid uid gid umask" of the worker
    supervision_apps:qs             the query string as the body
    supervision_apps:router         /, /slow, /spin, /sleep_forever, /grow,
                                    /version, /errors, /procinfo, /qs → the above

Every response carries X-Worker-Pid (the PID of the worker that ran it).
Every long-running app first appends its PID to $STARTED_FILE when set, so a
test knows which worker holds the request and that it is in flight. With
$ATEXIT_FILE set, the module registers an ``atexit`` callback that appends
the PID of the process leaving (as an error reporter flushes at exit).
"""

import atexit
import os
import time

GROW_STEP = 20 << 20  # bytes kept per /grow request

_hoard = []  # what /grow keeps alive for the life of the worker


def _read_version():
    path = os.environ.get("VERSION_FILE")
    if not path:
        return "unset"
    with open(path) as f:
        return f.read().strip()


VERSION = _read_version()


def _query(environ, name, default=None):
    # Parsed by hand: a worker running as -u nobody may not be able to read
    # the standard library to import urllib (e.g. a Python under /root).
    for pair in environ.get("QUERY_STRING", "").split("&"):
        key, _, value = pair.partition("=")
        if key == name:
            return value
    return default


def _at_exit(path):
    with open(path, "a") as f:
        f.write("%d\n" % os.getpid())


if os.environ.get("ATEXIT_FILE"):
    atexit.register(_at_exit, os.environ["ATEXIT_FILE"])


def _started():
    path = os.environ.get("STARTED_FILE")
    if path:
        with open(path, "a") as f:
            f.write("%d\n" % os.getpid())


def _answer(start_response, body, status="200 OK", extra=()):
    if isinstance(body, str):
        body = body.encode()
    start_response(status, [
        ("Content-Type", "text/plain"),
        ("Content-Length", str(len(body))),
        ("X-Worker-Pid", str(os.getpid())),
        *extra,
    ])
    return [body]


def _rss_mib():
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // (1 << 20)


def app(environ, start_response):
    return _answer(start_response, "ok")


def slow(environ, start_response):
    seconds = float(_query(environ, "s", "1"))
    _started()
    time.sleep(seconds)
    return _answer(start_response, "slept")


def spin_forever_marker(seconds):
    """Busy-loop in pure Python: the GIL is only given up at the interpreter's
    switch interval, never by a blocking call."""
    if seconds is None:
        while True:
            pass
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
    return n


def spin(environ, start_response):
    s = _query(environ, "s")
    _started()
    spin_forever_marker(float(s) if s is not None else None)
    return _answer(start_response, "spun")


def sleep_forever_marker():
    while True:
        time.sleep(0.5)


def sleep_forever(environ, start_response):
    _started()
    sleep_forever_marker()
    return _answer(start_response, "unreachable")


def grow(environ, start_response):
    # b"\x01" * n writes every byte, so the pages are resident (a zeroed
    # bytearray could stay untouched, mapped but not counted in RSS).
    _hoard.append(b"\x01" * GROW_STEP)
    rss = _rss_mib()
    return _answer(start_response, "grew", extra=[("X-Rss-Mib", str(rss))])


def version(environ, start_response):
    return _answer(start_response, VERSION)


def errors(environ, start_response):
    msg = _query(environ, "msg", "no message")
    stream = environ["wsgi.errors"]
    stream.write(msg + "\n")
    stream.flush()
    return _answer(start_response, "logged")


def procinfo(environ, start_response):
    mask = os.umask(0)
    os.umask(mask)
    body = "%d %d %d %d %o" % (os.getpid(), os.getppid(), os.getuid(), os.getgid(), mask)
    return _answer(start_response, body)


def qs(environ, start_response):
    return _answer(start_response, environ.get("QUERY_STRING", ""))


_ROUTES = {
    "": app,
    "slow": slow,
    "spin": spin,
    "sleep_forever": sleep_forever,
    "grow": grow,
    "version": version,
    "errors": errors,
    "procinfo": procinfo,
    "qs": qs,
}


def router(environ, start_response):
    name = environ.get("PATH_INFO", "/").strip("/").split("/", 1)[0]
    target = _ROUTES.get(name)
    if target is None:
        return _answer(start_response, "no route %r" % name, status="404 Not Found")
    return target(environ, start_response)
