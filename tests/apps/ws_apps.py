"""Raw ASGI WebSocket apps for tests/test_asgi_websocket.py: every event
visible, and a trace file (``WS_TRACE``) of what the app was told."""

import asyncio
import os

TRACE = os.environ.get("WS_TRACE")

# Set by GET /release: the /hold app starts receiving.
_released = asyncio.Event()


def trace(line):
    if TRACE:
        with open(TRACE, "a") as f:
            f.write(line + "\n")


async def _echo(receive, send):
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            trace("disconnect %s %s" % (event["code"], event.get("reason", "")))
            return
        if event.get("text") is not None:
            await send({"type": "websocket.send", "text": event["text"]})
        else:
            await send({"type": "websocket.send", "bytes": event["bytes"]})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        if scope["path"] == "/release":
            _released.set()
        body = b"plain http"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    assert scope["type"] == "websocket"
    path = scope["path"]
    event = await receive()
    assert event["type"] == "websocket.connect", event
    if path == "/echo":
        await send({"type": "websocket.accept"})
        trace("accepted %s %s" % (scope["scheme"], scope["http_version"]))
        await _echo(receive, send)
    elif path == "/subprotocol":
        offered = scope["subprotocols"]
        trace("offered %s" % ",".join(offered))
        await send({"type": "websocket.accept", "subprotocol": offered[-1] if offered else None,
                    "headers": [(b"x-custom", b"yes")]})
        await _echo(receive, send)
    elif path == "/deny":
        await send({"type": "websocket.close"})
    elif path == "/deny-response":
        await send({"type": "websocket.http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"4")]})
        await send({"type": "websocket.http.response.body", "body": b"nope"})
    elif path == "/close":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "closing"})
        await send({"type": "websocket.close", "code": 4001, "reason": "bye"})
        event = await receive()
        trace("after close %s %s" % (event["type"], event.get("code")))
    elif path == "/raise":
        await send({"type": "websocket.accept"})
        raise RuntimeError("the app failed")
    elif path == "/hold":
        # Receives nothing until released, then checks the numbered
        # messages came whole and in order, and says so after "end".
        await send({"type": "websocket.accept"})
        trace("holding")
        await _released.wait()
        count, in_order = 0, True
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                return
            if event.get("text") == "end":
                await send({"type": "websocket.send", "text": "got %d in order %s" % (count, in_order)})
                continue
            in_order = in_order and event.get("bytes", b"")[:8] == count.to_bytes(8, "big")
            count += 1
    elif path == "/burst":
        # Sends while the client reads nothing: send() must pause at the
        # output window, not queue without bound.
        await send({"type": "websocket.accept"})
        chunk = os.urandom(64 * 1024)
        for i in range(256):
            await send({"type": "websocket.send", "bytes": chunk})
            trace("sent %d" % (i + 1))
        await send({"type": "websocket.send", "text": "done"})
        await _echo(receive, send)
    else:
        await send({"type": "websocket.close", "code": 1000})
