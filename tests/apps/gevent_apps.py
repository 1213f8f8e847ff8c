"""Apps for tests/test_gevent.py, served by ``-k gevent``.

``app`` routes:

- ``/gate?until=N&total=T&bound=S``: counts itself in flight in this worker
  (and started across the server's workers, in the file ``$GEVENT_COUNTER``)
  and waits, sleeping cooperatively, until N requests are in flight in this
  worker or T have started across the workers (at most S seconds), then
  sleeps ``sleep`` seconds (0.5 by default). Answers JSON: the worker's pid
  and the most requests it has seen in flight at once; with ``greenlets=1``
  also how many greenlets were alive in the worker once the wait was over.
- ``/upstream?port=P``: reads a line from a TCP server on 127.0.0.1:P
  through the (patched) socket module.
- ``/hello``: a plain answer.
- ``/patched``: what gevent patched in this worker, what the hooks saw, and
  whether greenlets the request spawns run.
- ``/spin``: a loop that never yields (for ``--timeout``).
- ``/slow?marker=PATH``: touches PATH, then sleeps ``sleep`` seconds.
- ``/upload?marker=PATH``: touches PATH, then reads the whole body.
- ``/bigwrite?marker=PATH``: 16 MiB through ``write()``, touching PATH
  between its two 8 MiB calls.
- ``/bigiter?marker=PATH``: 16 MiB from a generator (touching PATH first),
  then ``tag=`` and the request's ``threading.local`` value.
"""

import fcntl
import json
import os
import socket
import time
from urllib.parse import parse_qs

_load = {"now": 0, "max": 0}


def _count_started():
    """Add one to the server-wide count of started requests; return it."""
    fd = os.open(os.environ["GEVENT_COUNTER"], os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        raw = os.read(fd, 32)
        count = int(raw or b"0") + 1
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, str(count).encode())
        return count
    finally:
        os.close(fd)


def _started():
    try:
        with open(os.environ["GEVENT_COUNTER"], "rb") as f:
            return int(f.read() or b"0")
    except FileNotFoundError:
        return 0


def _json(start_response, doc, status="200 OK"):
    body = json.dumps(doc).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _gate(q):
    until = int(q.get("until", ["1"])[0])
    total = int(q.get("total", ["0"])[0]) or float("inf")
    deadline = time.monotonic() + float(q.get("bound", ["15"])[0])
    _load["now"] += 1
    _load["max"] = max(_load["max"], _load["now"])
    try:
        _count_started()
        while _load["now"] < until and _started() < total and time.monotonic() < deadline:
            time.sleep(0.02)
        alive = _live_greenlets() if q.get("greenlets") == ["1"] else None
        time.sleep(float(q.get("sleep", ["0.5"])[0]))
    finally:
        _load["now"] -= 1
    doc = {"pid": os.getpid(), "max": _load["max"]}
    if alive is not None:
        doc["greenlets"] = alive
    return doc


def _live_greenlets():
    """Greenlets of this worker not yet finished: the hub's own, and one per
    request being served (however it was spawned)."""
    import gc

    import greenlet

    return sum(1 for o in gc.get_objects() if isinstance(o, greenlet.greenlet) and not o.dead)


def _upstream(q):
    with socket.create_connection(("127.0.0.1", int(q["port"][0])), timeout=30) as s:
        return s.makefile("rb").readline().decode().strip()


def _patched():
    import queue
    import subprocess
    import threading

    import gevent
    from gevent import monkey

    local = threading.local()
    local.value = "request"
    seen = []

    def child(n):
        local.value = "child"  # a greenlet of its own: its own local
        time.sleep(0.01)
        q.put(n)

    q = queue.Queue()
    children = [gevent.spawn(child, n) for n in range(3)]
    gevent.joinall(children, timeout=10)
    while not q.empty():
        seen.append(q.get())
    out = subprocess.run(["echo", "sub"], capture_output=True, timeout=10).stdout.decode().strip()
    return {
        "modules": {m: bool(monkey.is_module_patched(m)) for m in
                    ("socket", "ssl", "time", "select", "_thread", "threading", "subprocess", "queue")},
        "local_kept": local.value,
        "children": sorted(seen),
        "subprocess": out,
        "post_fork": os.environ.get("GEVENT_SEEN_POST_FORK"),
        "post_worker_init": os.environ.get("GEVENT_SEEN_POST_WORKER_INIT"),
    }


def spin_forever():
    n = 0
    while True:
        n += 1


def app(environ, start_response):
    path = environ["PATH_INFO"]
    q = parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/gate":
        return _json(start_response, _gate(q))
    if path == "/upstream":
        return _json(start_response, {"line": _upstream(q)})
    if path == "/patched":
        return _json(start_response, _patched())
    if path == "/spin":
        spin_forever()
    if path == "/slow":
        with open(q["marker"][0], "w"):
            pass
        time.sleep(float(q.get("sleep", ["1"])[0]))
        return _json(start_response, {"slept": True})
    if path == "/upload":
        with open(q["marker"][0], "w"):
            pass
        return _json(start_response, {"read": len(environ["wsgi.input"].read())})
    if path == "/bigwrite":
        # The first write is queued at once; the second waits for the client
        # to take most of the first, which it does only when told to.
        chunk = b"x" * (8 << 20)
        write = start_response("200 OK", [("Content-Length", str(2 * len(chunk)))])
        write(chunk)
        with open(q["marker"][0], "w"):
            pass
        write(chunk)
        return []
    if path == "/bigiter":
        return _bigiter(q["marker"][0], start_response)
    return _json(start_response, {"pid": os.getpid(), "hello": True})


_local = None


def _bigiter(marker, start_response):
    """16 MiB from a generator, then what this request's greenlet-local
    value is at the end of it (the response waits for its reader twice)."""
    import threading

    global _local
    if _local is None:
        _local = threading.local()
    _local.tag = "mine"
    chunk = b"x" * (8 << 20)
    start_response("200 OK", [("Content-Length", str(2 * len(chunk) + len("tag=mine")))])

    def body():
        with open(marker, "w"):
            pass
        yield chunk
        yield chunk
        yield ("tag=" + getattr(_local, "tag", "lost")).encode()

    return body()
