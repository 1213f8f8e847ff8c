"""Raw ASGI WebSocket echo for bench/websocket.py: every message comes back
as it came (text as text, bytes as bytes). A plain HTTP request gets the
13-byte hello, which is how the harness sees that the server is up.
Lifespan events are acknowledged, so no server logs a failed startup."""

HELLO = b"Hello, World!"
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
}
_BODY = {"type": "http.response.body", "body": HELLO}
_ACCEPT = {"type": "websocket.accept"}


async def _lifespan(receive, send):
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope, receive, send):
    kind = scope["type"]
    if kind == "http":
        await send(_START)
        await send(_BODY)
        return
    if kind == "lifespan":
        await _lifespan(receive, send)
        return
    event = await receive()
    if event["type"] != "websocket.connect":
        return
    await send(_ACCEPT)
    while True:
        event = await receive()
        if event["type"] != "websocket.receive":
            return  # websocket.disconnect
        text = event.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": event.get("bytes") or b""})
