"""Raw ASGI WebSocket echo for bench/asgi_ws.py: every message comes back
as it came (text as text, bytes as bytes). A plain HTTP request gets the
raw hello of asgi_hello.py, which is how the harness sees that the server
is up; lifespan is left unanswered, as the hello leaves it."""

from asgi_hello import hello

_ACCEPT = {"type": "websocket.accept"}


async def app(scope, receive, send):
    if scope["type"] != "websocket":
        await hello(scope, receive, send)
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
