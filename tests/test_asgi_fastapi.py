"""The FastAPI example (examples/fastapi_app.py) under rsgi's ASGI worker,
started as people start it under gunicorn (`-k uvicorn.workers.UvicornWorker`)
and driven with httpx; the same cases run against gunicorn with
uvicorn-worker's `UvicornWorker` when RSGI_TEST_SERVER=gunicorn."""

import hashlib
import os
import signal

import httpx
import pytest

import conftest
from _rawhttp import wait_for

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

ROOT = conftest.ROOT
WORKER = "uvicorn_worker.UvicornWorker" if conftest.SERVER_KIND == "gunicorn" else "uvicorn.workers.UvicornWorker"


@pytest.fixture
def fastapi_server(start_server, tmp_path):
    trace = tmp_path / "trace.txt"
    srv = start_server("examples.fastapi_app:app", "-k", WORKER, cwd=ROOT,
                       env={"FASTAPI_EXAMPLE_TRACE": str(trace)})
    srv.trace = trace
    return srv


@pytest.fixture
def client(fastapi_server):
    with httpx.Client(base_url=fastapi_server.url, trust_env=False, timeout=15) as c:
        yield c


def test_json_and_the_worker_line(fastapi_server, client):
    r = client.get("/")
    assert r.status_code == 200
    assert r.json() == {"hello": "world"}
    assert r.headers["content-type"] == "application/json"
    if conftest.SERVER_KIND == "rsgi":
        assert "Using worker: asgi" in fastapi_server.log()


def test_path_query_and_dependency_with_lifespan_state(client):
    r = client.get("/items/1", params={"q": "find me"})
    assert r.status_code == 200
    assert r.json() == {"item_id": 1, "q": "find me", "name": "hammer", "price": 9.5}
    assert client.get("/items/99").status_code == 404
    # A path parameter that is not an int: FastAPI's 422.
    r = client.get("/items/abc")
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["path", "item_id"]


def test_validated_body_and_422(client):
    r = client.post("/items", json={"name": "saw", "price": 12.5, "tags": ["tool"]}, headers={"x-api-key": "secret"})
    assert r.status_code == 201
    assert r.json() == {"id": 2, "name": "saw", "price": 12.5, "tags": ["tool"]}
    assert client.get("/items/2").json()["name"] == "saw"
    r = client.post("/items", json={"name": "", "price": -1}, headers={"x-api-key": "secret"})
    assert r.status_code == 422
    assert {e["loc"][-1] for e in r.json()["detail"]} == {"name", "price"}
    # The dependency refuses a missing key.
    assert client.post("/items", json={"name": "a", "price": 1}).status_code == 401


def test_file_upload(client):
    data = bytes((i * 7) % 251 for i in range(700_000))
    r = client.post("/upload", files={"file": ("blob.bin", data, "application/octet-stream")})
    assert r.status_code == 200
    assert r.json() == {"filename": "blob.bin", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_streaming_response_arrives_event_by_event(client):
    with client.stream("GET", "/stream", params={"n": 4, "delay": 0.05}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [chunk for chunk in r.iter_text() if chunk.strip()]
    assert "".join(events) == "".join("data: %d\n\n" % i for i in range(4))
    # Each event was its own chunk on the wire, not buffered into one.
    assert len(events) >= 2


def test_background_task_runs_after_the_response(fastapi_server, client):
    r = client.post("/notify", params={"message": "hi"})
    assert r.json() == {"queued": "hi"}
    assert wait_for(lambda: "background hi" in fastapi_server.trace.read_text(), timeout=10)


def test_sync_endpoint_in_the_thread_pool(client):
    assert client.get("/sync", params={"x": 21}).json() == {"double": 42}


def test_lifespan_startup_and_shutdown_on_term(fastapi_server, client):
    assert client.get("/db-open").json() == {"open": True}
    assert fastapi_server.trace.read_text().splitlines()[0] == "startup"
    assert fastapi_server.stop(signal.SIGTERM) == 0
    assert "shutdown" in fastapi_server.trace.read_text().splitlines()


def test_many_concurrent_requests_on_one_worker(client):
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: client.get("/items/1", params={"q": str(i)}).json()["q"], range(64)))
    assert results == [str(i) for i in range(64)]
