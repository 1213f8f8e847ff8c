"""ASGI benchmark apps: the raw hello (the server's own cost, with almost
no app), the same answer from FastAPI (a framework's routing, response
class and middleware stack), and a streamed response of 16 chunks, raw
(`stream`: 16 `http.response.body` events with `more_body=True`, then an
empty last one) and through FastAPI's `StreamingResponse` (`fastapi_stream`).
Neither stream sets a Content-Length, so HTTP/1.1 servers send it chunked."""

HELLO = b"Hello, World!"
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
}
_BODY = {"type": "http.response.body", "body": HELLO}

CHUNKS = 16
CHUNK = b"x" * 63 + b"\n"  # 64 bytes: 1 KiB in all
_STREAM_START = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
_STREAM_CHUNK = {"type": "http.response.body", "body": CHUNK, "more_body": True}
_STREAM_END = {"type": "http.response.body", "body": b"", "more_body": False}


async def hello(scope, receive, send):
    if scope["type"] != "http":
        return
    await send(_START)
    await send(_BODY)


async def stream(scope, receive, send):
    if scope["type"] != "http":
        return
    await send(_STREAM_START)
    for _ in range(CHUNKS):
        await send(_STREAM_CHUNK)
    await send(_STREAM_END)


async def _chunks():
    for _ in range(CHUNKS):
        yield CHUNK


def _fastapi():
    try:
        from fastapi import FastAPI
        from fastapi.responses import PlainTextResponse, StreamingResponse
    except ImportError:
        return None, None
    hello_app, stream_app = FastAPI(), FastAPI()

    @hello_app.get("/", response_class=PlainTextResponse)
    async def root():
        return "Hello, World!"

    @stream_app.get("/")
    async def streamed():
        return StreamingResponse(_chunks(), media_type="text/plain")

    return hello_app, stream_app


fastapi_hello, fastapi_stream = _fastapi()
