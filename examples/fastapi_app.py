"""A FastAPI app as people deploy them, served by rsgi's ASGI worker:

    rsgi examples.fastapi_app:app -k uvicorn.workers.UvicornWorker

JSON, path and query parameters, a pydantic-validated body (422 when it
does not validate), a file upload (python-multipart), a streaming
response, a background task, a dependency, and lifespan state (a "database"
opened at startup and closed at shutdown).
"""

import asyncio
import contextlib
import os
from typing import AsyncIterator, Optional

from fastapi import BackgroundTasks, Depends, FastAPI, File, Header, HTTPException, Request, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

#: Where the background task and lifespan shutdown leave a trace (tests
#: read it), when set.
TRACE = os.environ.get("FASTAPI_EXAMPLE_TRACE")


def _trace(line: str) -> None:
    if TRACE:
        with open(TRACE, "a") as f:
            f.write(line + "\n")


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict]:
    db = {"items": {1: {"name": "hammer", "price": 9.5}}, "open": True}
    _trace("startup")
    yield {"db": db}
    db["open"] = False
    _trace("shutdown")


app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str = Field(min_length=1)
    price: float = Field(gt=0)
    tags: list[str] = []


def get_db(request: Request) -> dict:
    return request.state.db


def api_key(x_api_key: Optional[str] = Header(default=None)) -> str:
    if x_api_key != "secret":
        raise HTTPException(status_code=401, detail="bad api key")
    return x_api_key


@app.get("/")
async def root() -> dict:
    return {"hello": "world"}


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: Optional[str] = None, db: dict = Depends(get_db)) -> dict:
    item = db["items"].get(item_id)
    if item is None:
        raise HTTPException(status_code=404, detail="no such item")
    return {"item_id": item_id, "q": q, **item}


@app.post("/items", status_code=201)
async def create_item(item: Item, db: dict = Depends(get_db), key: str = Depends(api_key)) -> dict:
    new_id = max(db["items"]) + 1
    db["items"][new_id] = {"name": item.name, "price": item.price}
    return {"id": new_id, **item.model_dump()}


@app.post("/upload")
async def upload(file: UploadFile = File(...)) -> dict:
    data = await file.read()
    import hashlib

    return {"filename": file.filename, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@app.get("/stream")
async def stream(n: int = 5, delay: float = 0.0) -> StreamingResponse:
    async def lines() -> AsyncIterator[bytes]:
        for i in range(n):
            yield b"data: %d\n\n" % i
            if delay:
                await asyncio.sleep(delay)

    return StreamingResponse(lines(), media_type="text/event-stream")


@app.post("/notify")
async def notify(message: str, tasks: BackgroundTasks) -> dict:
    tasks.add_task(_trace, "background " + message)
    return {"queued": message}


@app.get("/sync")
def sync_endpoint(x: int = 1) -> dict:
    # A plain def: FastAPI runs it in its thread pool.
    return {"double": x * 2}


@app.get("/db-open")
async def db_open(db: dict = Depends(get_db)) -> dict:
    return {"open": db["open"]}
