"""The event loop of rsgi's ASGI worker: it runs on the worker's one ASGI
thread and only drives the app. The Rust I/O loop owns the sockets and
parses HTTP; requests arrive through ``feed.take()`` when the eventfd
``feed.fd`` (watched with ``loop.add_reader``) fires, with their scope
already built, and every ``receive`` / ``send`` is a call into Rust that
never waits: when it cannot go on (no body bytes yet, the output window
full) the coroutine awaits a future the next wake-up resolves.

Also here: the lifespan protocol, the disconnect grace period and the
graceful end. The interface detection is in ``rsgi._interface``, which
every worker kind imports (asyncio is imported by the ASGI worker only).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from typing import Any, Optional

from rsgi._interface import interface

_log = logging.getLogger("rsgi.asgi")


def _asgi2(app: Any) -> Any:
    async def asgi3(scope, receive, send):
        await app(scope)(receive, send)

    return asgi3


def _new_loop(name: str) -> asyncio.AbstractEventLoop:
    if name in ("auto", "uvloop"):
        try:
            import uvloop  # type: ignore[import-not-found]
        except ImportError:
            if name == "uvloop":
                raise
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _plain_tasks(loop: asyncio.AbstractEventLoop) -> Any:
    """How requests become tasks when the app set no task factory. On 3.12
    and later the first step runs at once, inside its task: a request that
    never waits costs no loop iteration. On 3.11 the task gets a name: one
    without is named ``Task-N`` by a ``printf`` in its constructor, a
    noticeable part of a small request (bench/PROFILE.md)."""
    if sys.version_info >= (3, 12):
        return functools.partial(asyncio.Task, loop=loop, eager_start=True)
    return functools.partial(asyncio.Task, loop=loop, name=_TASK_NAME)


#: The name of every request's task (3.11; later versions number them
#: lazily).
_TASK_NAME = "rsgi-request"


class _Driver:
    """Takes requests from the feed and runs them."""

    def __init__(self, loop: asyncio.AbstractEventLoop, feed: Any, app: Any, disconnect_grace: float) -> None:
        self.loop = loop
        self.feed = feed
        self.app = app
        self.disconnect_grace = disconnect_grace
        self.plain_tasks = _plain_tasks(loop)
        self.live: dict = {}
        self.stopping = False

    def wake(self) -> None:
        loop = self.loop
        try:
            # `take` makes this thread hold its wake-ups of the I/O loop
            # until `release`, which runs in the next iteration after the
            # steps scheduled here: their responses wake it once, not once
            # each.
            news, woken, stopping = self.feed.take()
            live = self.live
            # A task factory the app set is used, as `create_task` would.
            new_task = self.plain_tasks if loop.get_task_factory() is None else loop.create_task
            for key in woken:
                h = live.get(key)
                if h is not None:
                    h.poke()
                    # The client left mid-response: the grace period starts.
                    if h.grace is None and h.task is not None and h.abandoned():
                        h.grace = loop.call_later(self.disconnect_grace, h.task.cancel)
            app = self.app
            for h in news:
                # `run` enters `h` in `live` until the app's end (a Rust
                # object the task steps as a coroutine: `pre_request`, the
                # app, the end with what it raised or its cancellation).
                task = new_task(h.run(app, live))
                if not task.done():
                    h.task = task
        finally:
            loop.call_soon(self.feed.release)
        if stopping and not self.stopping:
            self.stopping = True
            loop.stop()

    def beat(self) -> None:
        self.feed.beat()
        self.loop.call_later(1.0, self.beat)

    async def drain(self, timeout: float) -> None:
        """Let running requests (background tasks after their response
        included) finish, for at most ``timeout`` seconds."""
        tasks = [h.task for h in self.live.values() if h.task is not None]
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=timeout or None)
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)


class _Lifespan:
    """The lifespan protocol, as uvicorn runs it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, app: Any, mode: str) -> None:
        self.loop = loop
        self.app = app
        self.mode = mode
        self.state: dict = {}
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task: Optional[asyncio.Task] = None
        self.startup_done = loop.create_future()
        self.shutdown_done = loop.create_future()
        self.failure: Optional[str] = None
        self.started = False
        self.supported = True

    async def startup(self) -> Optional[str]:
        """Returns None when the worker may serve, else why it stops."""
        if self.mode == "off":
            return None
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        self.task = self.loop.create_task(self.main(scope))
        await self.queue.put({"type": "lifespan.startup"})
        await asyncio.wait([self.startup_done, self.task], return_when=asyncio.FIRST_COMPLETED)
        return self.failure

    async def main(self, scope: dict) -> None:
        try:
            await self.app(scope, self.receive, self.send)
        except BaseException as exc:  # noqa: B036 - reported below
            self.supported = False
            if self.started or self.mode == "on" or self.startup_done.done():
                if not self.startup_done.done():
                    self.failure = "Exception in 'lifespan' protocol: %r" % (exc,)
                _log_exception("Exception in 'lifespan' protocol", exc)
            else:
                _info("ASGI 'lifespan' protocol appears unsupported.")
        else:
            if not self.startup_done.done() and self.mode == "on":
                self.failure = "the application returned from the lifespan scope without completing startup"
        finally:
            for fut in (self.startup_done, self.shutdown_done):
                if not fut.done():
                    fut.set_result(None)

    async def receive(self) -> dict:
        return await self.queue.get()

    async def send(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            self.started = True
            if not self.startup_done.done():
                self.startup_done.set_result(None)
        elif kind == "lifespan.startup.failed":
            self.failure = message.get("message") or "lifespan.startup.failed"
            if not self.startup_done.done():
                self.startup_done.set_result(None)
        elif kind == "lifespan.shutdown.complete":
            if not self.shutdown_done.done():
                self.shutdown_done.set_result(None)
        elif kind == "lifespan.shutdown.failed":
            _error("Application shutdown failed: %s" % (message.get("message") or ""))
            if not self.shutdown_done.done():
                self.shutdown_done.set_result(None)
        else:
            raise RuntimeError("Unexpected ASGI lifespan message %r" % (kind,))

    async def shutdown(self, timeout: float) -> None:
        if self.task is None or self.task.done() or not self.supported:
            return
        await self.queue.put({"type": "lifespan.shutdown"})
        await asyncio.wait([self.shutdown_done, self.task], timeout=timeout or None, return_when=asyncio.FIRST_COMPLETED)


def _emit(level: int, message: str) -> None:
    from . import _rsgi  # type: ignore[attr-defined]

    _rsgi._log(level, message)


def _info(message: str) -> None:
    _emit(logging.INFO, message)


def _error(message: str) -> None:
    _emit(logging.ERROR, message)


def _log_exception(message: str, exc: BaseException) -> None:
    import traceback

    _error(message + "\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip())


def serve(feed: Any, app: Any, settings: dict) -> None:
    """The ASGI thread's whole life: lifespan startup (reported through
    ``feed.started``), serving until the worker stops, then the requests
    still running and lifespan shutdown."""
    loop = _new_loop(settings["loop"])
    asyncio.set_event_loop(loop)
    if interface(app) == "asgi2":
        app = _asgi2(app)
    life = _Lifespan(loop, app, settings["lifespan"])
    try:
        failure = loop.run_until_complete(life.startup())
    except BaseException as exc:  # noqa: B036 - reported as the failure
        failure = "%s: %s" % (type(exc).__name__, exc)
    # As uvicorn: every scope has a `state`, a copy of what lifespan left.
    feed.started(failure, life.state)
    if failure is not None:
        loop.close()
        return
    driver = _Driver(loop, feed, app, settings["disconnect_grace"])
    feed.bind_loop(loop)
    loop.add_reader(feed.fd, driver.wake)
    driver.beat()
    driver.wake()
    try:
        loop.run_forever()
        feed.release()
        loop.remove_reader(feed.fd)
        loop.run_until_complete(driver.drain(settings["graceful"]))
        loop.run_until_complete(life.shutdown(settings["graceful"]))
    finally:
        loop.close()
        asyncio.set_event_loop(None)
