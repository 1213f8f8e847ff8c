"""ASGI benchmark apps: the raw hello (the server's own cost, with almost
no app) and the same answer from FastAPI (a framework's routing, response
class and middleware stack)."""

HELLO = b"Hello, World!"
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
}
_BODY = {"type": "http.response.body", "body": HELLO}


async def hello(scope, receive, send):
    if scope["type"] != "http":
        return
    await send(_START)
    await send(_BODY)


def _fastapi():
    try:
        from fastapi import FastAPI
        from fastapi.responses import PlainTextResponse
    except ImportError:
        return None
    app = FastAPI()

    @app.get("/", response_class=PlainTextResponse)
    async def root():
        return "Hello, World!"

    return app


fastapi_hello = _fastapi()
