"""The runnable examples, served from the repo root as a user would run them:
``examples.hello:app``, the Flask app, the streaming and upload apps, and the
Django project (``myproject.wsgi:application --chdir examples/django_project``)."""

import hashlib
import json
import os

import pytest
import requests

import conftest
from _rawhttp import wait_for

ROOT = conftest.ROOT
DJANGO_DIR = ROOT / "examples" / "django_project"


@pytest.fixture
def http():
    session = requests.Session()
    session.trust_env = False  # never route loopback requests through a proxy
    yield session
    session.close()


def _payload(size):
    return bytes((i * 31 + i // 7) % 256 for i in range(size))


# -- hello -------------------------------------------------------------------

def test_hello(start_server, http):
    srv = start_server("examples.hello:app", cwd=ROOT)
    resp = http.get(srv.url + "/", timeout=10)
    assert resp.status_code == 200
    assert resp.content == b"Hello, World!"
    assert resp.headers["Content-Length"] == "13"
    assert resp.headers["Content-Type"] == "text/plain"


# -- streaming and uploads ---------------------------------------------------

def test_streaming_example(start_server, http):
    srv = start_server("examples.streaming:app", cwd=ROOT)
    resp = http.get(srv.url + "/?n=5&delay=0.05", timeout=10)
    assert resp.status_code == 200
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    assert resp.text == "".join("line %d\n" % i for i in range(5))


@pytest.mark.parametrize("chunked", [False, True])
def test_uploads_example(start_server, http, chunked):
    srv = start_server("examples.uploads:app", cwd=ROOT)
    data = _payload(3 * 1024 * 1024 + 17)
    body = (data[i:i + 100_000] for i in range(0, len(data), 100_000)) if chunked else data
    resp = http.post(srv.url + "/", data=body, timeout=60)
    assert resp.status_code == 200
    assert resp.json() == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


# -- Flask -------------------------------------------------------------------

@pytest.fixture(scope="module")
def flask_server():
    srv = conftest.spawn("examples.flask_app:app", cwd=ROOT)
    yield srv
    srv.stop(timeout=15)


def test_flask_index(flask_server, http):
    resp = http.get(flask_server.url + "/", timeout=10)
    assert resp.status_code == 200
    assert resp.text == "Hello from Flask!"
    assert resp.headers["Content-Type"].startswith("text/plain")


def test_flask_json(flask_server, http):
    resp = http.get(flask_server.url + "/json", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.json() == {"message": "hello", "numbers": [1, 2, 3], "nested": {"ok": True}}


def test_flask_echo_form(flask_server, http):
    resp = http.post(flask_server.url + "/echo", data=[("a", "1"), ("b", "2"), ("b", "3 é")],
                     timeout=10)
    assert resp.status_code == 200
    assert resp.json() == {"kind": "form", "data": {"a": ["1"], "b": ["2", "3 é"]}}


def test_flask_echo_json(flask_server, http):
    doc = {"x": [1, 2, {"y": None}], "s": "snow ☃"}
    resp = http.post(flask_server.url + "/echo", json=doc, timeout=10)
    assert resp.status_code == 200
    assert resp.json() == {"kind": "json", "data": doc}


def test_flask_upload(flask_server, http):
    data = _payload(700_001)
    resp = http.post(flask_server.url + "/upload",
                     files={"file": ("blob.bin", data, "application/octet-stream")},
                     data={"note": "hi"}, timeout=30)
    assert resp.status_code == 200
    assert resp.json() == {"filename": "blob.bin", "size": len(data),
                           "sha256": hashlib.sha256(data).hexdigest()}


def test_flask_stream(flask_server, http):
    resp = http.get(flask_server.url + "/stream", stream=True, timeout=10)
    assert resp.status_code == 200
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    assert b"".join(resp.iter_content(None)) == b"".join(b"chunk %d\n" % i for i in range(10))


def test_flask_headers(flask_server, http):
    resp = http.get(flask_server.url + "/headers", headers={"X-Example": "yes"}, timeout=10)
    assert resp.status_code == 200
    got = resp.json()
    assert got["X-Example"] == "yes"
    assert got["Host"] == "127.0.0.1:%d" % flask_server.port


def test_flask_error(flask_server, http):
    mark = len(flask_server.log())
    resp = http.get(flask_server.url + "/error", timeout=10)
    assert resp.status_code == 500
    assert "intentional error" not in resp.text
    assert wait_for(lambda: "intentional error from /error" in flask_server.log()[mark:],
                    timeout=10)
    # Still serving afterwards.
    assert http.get(flask_server.url + "/", timeout=10).status_code == 200


def test_flask_not_found(flask_server, http):
    assert http.get(flask_server.url + "/nope", timeout=10).status_code == 404


# -- Django ------------------------------------------------------------------

@pytest.fixture(scope="module")
def django_server():
    env = {"DJANGO_SETTINGS_MODULE": "myproject.settings"}
    srv = conftest.spawn("myproject.wsgi:application", "--chdir",
                         os.path.relpath(DJANGO_DIR, ROOT), cwd=ROOT, env=env)
    yield srv
    srv.stop(timeout=15)


def test_django_index(django_server, http):
    resp = http.get(django_server.url + "/", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "<h1>Hello from Django!</h1>" in resp.text


def test_django_csrf_protects_views_that_are_not_exempt(django_server, http):
    assert http.post(django_server.url + "/", data="x", timeout=10).status_code == 403


def test_django_api_echo(django_server, http):
    doc = {"numbers": [1, 2, 3], "text": "naïve ☃", "none": None}
    resp = http.post(django_server.url + "/api/echo", json=doc, timeout=10)
    assert resp.status_code == 200
    assert resp.json() == {"received": doc, "content_type": "application/json"}


def test_django_api_echo_chunked_body(django_server, http):
    doc = {"parts": list(range(100))}
    raw = json.dumps(doc).encode()
    resp = http.post(django_server.url + "/api/echo",
                     data=(raw[i:i + 50] for i in range(0, len(raw), 50)),
                     headers={"Content-Type": "application/json"}, timeout=10)
    assert resp.status_code == 200
    # Django sizes request.body by CONTENT_LENGTH and reads a body sent
    # without one as empty; a framework honouring wsgi.input_terminated would
    # see the whole document.  Either way the server must not break.
    assert resp.json()["received"] in (doc, None)


def test_django_api_query(django_server, http):
    resp = http.get(django_server.url + "/api/query",
                    params=[("a", "1"), ("a", "2"), ("b", "x y")], timeout=10)
    assert resp.status_code == 200
    assert resp.json() == {"a": ["1", "2"], "b": ["x y"]}


def test_django_stream(django_server, http):
    resp = http.get(django_server.url + "/stream", stream=True, timeout=10)
    assert resp.status_code == 200
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    assert b"".join(resp.iter_content(None)) == b"".join(b"part %d\n" % i for i in range(5))


def test_django_file_response(django_server, http):
    expected = (DJANGO_DIR / "demo" / "files" / "sample.txt").read_bytes()
    resp = http.get(django_server.url + "/file", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert resp.headers["Content-Length"] == str(len(expected))
    assert resp.content == expected


def test_django_error(django_server, http):
    mark = len(django_server.log())
    resp = http.get(django_server.url + "/error", timeout=10)
    assert resp.status_code == 500
    assert "intentional error" not in resp.text
    assert wait_for(lambda: "intentional error from /error" in django_server.log()[mark:],
                    timeout=10)
    assert http.get(django_server.url + "/", timeout=10).status_code == 200


def test_django_not_found(django_server, http):
    assert http.get(django_server.url + "/missing", timeout=10).status_code == 404
