"""A FastAPI app with a WebSocket endpoint (tests/test_asgi_websocket.py)."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


@app.get("/")
def index():
    return {"hello": "world"}


@app.websocket("/ws/{room}")
async def room(websocket: WebSocket, room: str):
    await websocket.accept()
    try:
        while True:
            data = await websocket.receive_json()
            await websocket.send_json({"room": room, "got": data, "n": len(str(data))})
    except WebSocketDisconnect as exc:
        if exc.code not in (1000, 1001, 1005):
            raise
