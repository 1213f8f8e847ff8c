"""The gevent worker's Python side (``-k gevent``).

rsgi's I/O loop keeps every socket and all of HTTP on a thread of its own;
this module runs gevent's hub on the worker's main thread. ``patch`` runs
right after fork, before ``post_fork`` and before the app is imported.
``serve`` is the dispatcher: it takes the requests the loop hands over and
runs each in a greenlet of a bounded pool, wakes greenlets whose request
can go on (body bytes arrived, output drained), and otherwise waits on the
descriptor the loop rings. ``wait`` is how a request's greenlet waits for
its I/O without holding the hub. ``capacity`` is ``--worker-connections``:
the loop never has more requests than that handed over and not yet done.
"""

from __future__ import annotations

from typing import Any, Dict

#: Greenlets waiting for their request's I/O, by the connection's serial.
_waiters: Dict[int, Any] = {}


def patch() -> None:
    """Make the standard library cooperative in this worker, and give it a
    hub of its own (gevent may have been imported before the fork)."""
    import gevent  # type: ignore[import-untyped]
    from gevent import monkey  # type: ignore[import-untyped]

    monkey.patch_all()
    gevent.reinit()


def wait(key: int, timeout: float) -> None:
    """Block the calling greenlet until request ``key`` is woken (or
    ``timeout`` seconds pass; the caller looks at its state again)."""
    from gevent.event import Event  # type: ignore[import-untyped]

    event = _waiters.get(key)
    if event is None:
        event = _waiters[key] = Event()
    try:
        event.wait(timeout)
    finally:
        if _waiters.get(key) is event:
            del _waiters[key]


def _watchdog(bridge: Any, interval: float) -> None:
    """Tell the master the hub runs. A greenlet that holds the hub without
    yielding stops this, and ``--timeout`` then ends the worker with every
    thread's traceback."""
    import gevent  # type: ignore[import-untyped]

    while True:
        bridge.beat()
        gevent.sleep(interval)


def serve(bridge: Any, capacity: int, timeout: int, graceful: int) -> None:
    """Dispatch requests until the loop ends; on a graceful end, wait up to
    ``graceful`` seconds for the greenlets still running.

    The spawn is bounded by the loop: it hands over at most ``capacity``
    (``--worker-connections``) requests not yet done, so a raw greenlet per
    request needs no pool of its own (a ``gevent.pool.Pool`` would count
    the same requests a second time, at a cost per request)."""
    import gevent  # type: ignore[import-untyped]

    hub = gevent.get_hub()
    watcher = hub.loop.io(bridge.fileno(), 1)
    watchdog = gevent.spawn(_watchdog, bridge, min(1.0, max(timeout, 1) / 4.0))
    take, arm, serve_one, spawn = bridge.take, bridge.arm, bridge.serve, gevent.spawn_raw
    try:
        while True:
            requests, woken, closed = take()
            for key in woken:
                event = _waiters.pop(key, None)
                if event is not None:
                    event.set()
            for request in requests:
                spawn(serve_one, request)
            if closed == "fast":
                return
            if closed:
                break
            if not arm():
                hub.wait(watcher)
        with gevent.Timeout(graceful, False):
            while bridge.in_flight():
                gevent.sleep(0.05)
    finally:
        watchdog.kill(block=False)
        watcher.close()
