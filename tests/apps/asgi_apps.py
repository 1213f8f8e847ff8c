"""Raw ASGI 3 apps for the protocol edges of the ASGI worker
(tests/test_asgi_protocol.py). No framework: every event is visible."""

import asyncio
import json
import os
import time
from urllib.parse import parse_qs

TRACE = os.environ.get("ASGI_TRACE")

if os.environ.get("ATEXIT_FILE"):
    import atexit

    def _at_exit(path):
        with open(path, "a") as f:
            f.write("%d\n" % os.getpid())

    atexit.register(_at_exit, os.environ["ATEXIT_FILE"])


def trace(line):
    if TRACE:
        with open(TRACE, "a") as f:
            f.write(line + "\n")


def _query(scope):
    return {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}


async def _respond(send, status, body, headers=()):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode())] + list(headers)})
    await send({"type": "http.response.body", "body": body})


async def _read_all(receive):
    body, chunks = b"", 0
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":
            return body, chunks, True
        body += event.get("body", b"")
        chunks += 1
        if not event.get("more_body", False):
            return body, chunks, False


async def lifespan(scope, receive, send):
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            if os.environ.get("ASGI_STARTUP_FAIL"):
                await send({"type": "lifespan.startup.failed", "message": os.environ["ASGI_STARTUP_FAIL"]})
                return
            scope["state"]["started_at"] = time.time()
            scope["state"]["counter"] = [0]
            trace("startup %d" % os.getpid())
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            trace("shutdown %d" % os.getpid())
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    assert scope["type"] == "http"
    path = scope["path"]
    if scope["root_path"] and path.startswith(scope["root_path"]):
        path = path[len(scope["root_path"]):]  # routes are below the mount point
    q = _query(scope)
    if path == "/echo":
        body, chunks, _ = await _read_all(receive)
        await _respond(send, 200, body, [(b"x-chunks", str(chunks).encode())])
    elif path.startswith("/scope"):
        shown = {}
        for k, v in scope.items():
            if k == "headers":
                shown[k] = [[n.decode("latin-1"), x.decode("latin-1")] for n, x in v]
            elif k == "state":
                shown[k] = sorted(v)
            elif isinstance(v, bytes):
                shown[k] = v.decode("latin-1")
            elif isinstance(v, tuple):
                shown[k] = list(v)
            else:
                shown[k] = v
        await _respond(send, 200, json.dumps(shown).encode(), [(b"content-type", b"application/json")])
    elif path == "/state":
        counter = scope["state"]["counter"]
        counter[0] += 1
        await _respond(send, 200, str(counter[0]).encode())
    elif path == "/stream":
        n, delay = int(q.get("n", "3")), float(q.get("delay", "0"))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for i in range(n):
            await send({"type": "http.response.body", "body": b"data: %d\n\n" % i, "more_body": True})
            if delay:
                await asyncio.sleep(delay)
        await send({"type": "http.response.body", "body": b""})
    elif path == "/big":
        # Output back-pressure: `send` must pause while the client lags.
        size, chunk = int(q.get("mb", "8")) << 20, b"x" * 65536
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(size).encode())]})
        for _ in range(size // len(chunk)):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        trace("big done")
        await send({"type": "http.response.body", "body": b""})
    elif path == "/wait-disconnect":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"waiting\n", "more_body": True})
        while True:
            event = await receive()
            if event["type"] == "http.disconnect":
                trace("disconnect seen")
                return
    elif path == "/ignore-disconnect":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"started\n", "more_body": True})
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            trace("cancelled")
            raise
    elif path == "/after-response":
        await receive()  # the (empty) request body
        await _respond(send, 200, b"done")
        event = await receive()
        trace("after response: " + event["type"])
    elif path == "/raise-before":
        raise RuntimeError("boom before start")
    elif path == "/raise-after":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("boom after start")
    elif path == "/no-response":
        return
    elif path == "/noread":
        await _respond(send, 200, b"not reading")
    elif path == "/first-chunk":
        # Answers with the first body event alone.
        event = await receive()
        await _respond(send, 200, event.get("body", b""), [(b"x-more-body", str(event.get("more_body", False)).encode())])
    elif path == "/slow-read":
        # Reads the body slowly: the upload must wait for it, not pile up.
        total = 0
        while True:
            event = await receive()
            total += len(event.get("body", b""))
            if not event.get("more_body"):
                break
            await asyncio.sleep(0.01)
        await _respond(send, 200, str(total).encode())
    elif path == "/pathsend":
        size = os.path.getsize(q["path"])
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(size).encode())]})
        await send({"type": "http.response.pathsend", "path": q["path"]})
    elif path == "/trailers":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"trailer", b"x-checksum")], "trailers": True})
        await send({"type": "http.response.body", "body": b"hello ", "more_body": True})
        await send({"type": "http.response.body", "body": b"world"})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc123")]})
    elif path == "/sleep":
        trace("sleeping")
        await asyncio.sleep(float(q.get("s", "1")))
        await _respond(send, 200, b"slept")
    elif path == "/block":
        time.sleep(float(q.get("s", "60")))
        await _respond(send, 200, b"blocked")
    elif path == "/then-block":
        # Answers, then blocks the event loop (sync work after the
        # response) until the client has said it got the answer.
        await _respond(send, 200, b"answered")
        deadline = time.monotonic() + 30
        while not os.path.exists(q["flag"]) and time.monotonic() < deadline:
            time.sleep(0.01)
        trace("unblocked: " + str(os.path.exists(q["flag"])))
    elif path == "/modules":
        import sys
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("uvicorn", "uvicorn_worker", "gunicorn"))
        await _respond(send, 200, json.dumps(loaded).encode())
    elif path == "/status":
        await _respond(send, int(q.get("code", "200")), b"")
    else:
        await _respond(send, 404, b"not found")


async def lifespan_raises(scope, receive, send):
    """An app that knows nothing of lifespan (raises on it)."""
    if scope["type"] != "http":
        raise RuntimeError("only http here")
    await _respond(send, 200, b"ok")


async def no_lifespan_return(scope, receive, send):
    if scope["type"] == "lifespan":
        return
    await _respond(send, 200, b"ok")


class MarkedTask(asyncio.Task):
    """The tasks of the factory `factory_app` installs."""


async def factory_app(scope, receive, send):
    """Installs a task factory at lifespan startup; a request answers with
    the type of the task it runs in."""
    if scope["type"] == "lifespan":
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                asyncio.get_running_loop().set_task_factory(lambda loop, coro, **kw: MarkedTask(coro, loop=loop, **kw))
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await _respond(send, 200, type(asyncio.current_task()).__name__.encode())


class Asgi2App:
    """An ASGI 2 (double-callable) app."""

    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        if self.scope["type"] == "lifespan":
            return
        await _respond(send, 200, b"asgi2")


def wsgi_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"wsgi"]


class Wrapped:
    """A middleware whose ``__call__`` takes ``*args`` (as some tracing
    wrappers do): the signature cannot tell, so the ASGI worker runs it."""

    def __init__(self, app):
        self.app = app

    def __call__(self, *args, **kwargs):
        return self.app(*args, **kwargs)


wrapped = Wrapped(lifespan_raises)


class AwaitableApp:
    """An app whose plain ``__call__`` returns an awaitable object that is
    not a coroutine (its ``__await__`` is what ``await`` iterates)."""

    def __call__(self, scope, receive, send):
        return _Answer(scope, send)


class _Answer:
    def __init__(self, scope, send):
        self.scope, self.send = scope, send

    def __await__(self):
        return self._answer().__await__()

    async def _answer(self):
        if self.scope["type"] != "http":
            return
        await asyncio.sleep(0)  # a real suspension inside the awaitable
        await _respond(self.send, 200, b"awaited")


awaitable_app = AwaitableApp()


def not_awaitable_app(scope, receive, send):
    """Returns nothing to await: a TypeError in the server's `await`."""
    return None


async def coro_state_app(scope, receive, send):
    """Answers with what ``inspect`` says of its task's coroutine, as anyio
    asks when it cancels a scope."""
    if scope["type"] != "http":
        return
    import inspect

    coro = asyncio.current_task().get_coro()
    await asyncio.sleep(0)
    state = inspect.getcoroutinestate(coro)
    await _respond(send, 200, f"{state} {coro.cr_frame is not None}".encode())
