"""The runnable examples, served from the repo root as a user would run them:
``examples.hello:app``, the Flask app, the streaming and upload apps, and the
Django project (``myproject.wsgi:application --chdir examples/django_project``)."""

import hashlib
import json
import os
import re
import subprocess
import sys

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

@pytest.fixture(scope="module", params=conftest.WORKER_KINDS)
def flask_server(request):
    srv = conftest.spawn("examples.flask_app:app", *conftest.kind_args(request.param), cwd=ROOT)
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
def django_static(tmp_path_factory):
    """The example's `collectstatic` output (hashed names and a manifest),
    written to a temporary STATIC_ROOT."""
    root = tmp_path_factory.mktemp("django-static")
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="myproject.settings", DJANGO_STATIC_ROOT=str(root))
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=str(DJANGO_DIR), env=env,
                   check=True, timeout=120, capture_output=True)
    return root


@pytest.fixture(scope="module", params=conftest.WORKER_KINDS)
def django_server(request, django_static):
    env = {"DJANGO_SETTINGS_MODULE": "myproject.settings", "DJANGO_STATIC_ROOT": str(django_static)}
    srv = conftest.spawn("myproject.wsgi:application", *conftest.kind_args(request.param), "--chdir",
                         os.path.relpath(DJANGO_DIR, ROOT), "--static-map", "/static=%s" % django_static,
                         cwd=ROOT, env=env)
    yield srv
    srv.stop(timeout=15)


def test_django_collectstatic_served_by_rsgi(django_server, django_static, http):
    manifest = json.loads((django_static / "staticfiles.json").read_text())
    hashed = manifest["paths"]["demo/site.css"]
    assert hashed != "demo/site.css"
    page = http.get(django_server.url + "/styled", timeout=10)
    assert page.status_code == 200 and 'href="/static/%s"' % hashed in page.text
    css = http.get(django_server.url + "/static/" + hashed, timeout=10)
    assert css.status_code == 200 and css.content == (django_static / hashed).read_bytes()
    assert css.headers["Content-Type"] == "text/css; charset=utf-8"
    assert css.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    # Conditional GET, and the unhashed copy collectstatic also keeps.
    again = http.get(css.url, headers={"If-None-Match": css.headers["ETag"]}, timeout=10)
    assert again.status_code == 304
    plain = http.get(django_server.url + "/static/demo/site.css", timeout=10)
    assert plain.status_code == 200 and plain.headers["Cache-Control"] == "public, max-age=60"
    # A miss under /static is the server's 404, not Django's.
    miss = http.get(django_server.url + "/static/demo/missing.css", timeout=10)
    assert miss.status_code == 404 and miss.text == "404 Not Found\n"


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


def _csrf_token(html):
    m = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert m, html
    return m.group(1)


def test_django_form_post_with_csrf(django_server, http):
    page = http.get(django_server.url + "/contact", timeout=10)
    assert page.status_code == 200
    assert "csrftoken" in http.cookies
    token = _csrf_token(page.text)
    form = {"name": "Ada", "email": "ada@example.com", "message": "hello é"}
    # Without the token (cookie alone), CsrfViewMiddleware refuses the POST.
    refused = http.post(django_server.url + "/contact", data=form, timeout=10)
    assert refused.status_code == 403
    ok = http.post(django_server.url + "/contact", data=dict(form, csrfmiddlewaretoken=token), timeout=10)
    assert ok.status_code == 200
    assert "Thanks, Ada: 7 characters received." in ok.text
    invalid = http.post(django_server.url + "/contact",
                        data=dict(form, email="not-an-address", csrfmiddlewaretoken=token), timeout=10)
    assert invalid.status_code == 400
    assert "Enter a valid email address." in invalid.text


@pytest.mark.parametrize("size", [10_000, 3 * 1024 * 1024 + 5])  # in memory; spooled to a temp file
def test_django_file_upload_with_csrf(django_server, http, size):
    token = _csrf_token(http.get(django_server.url + "/upload", timeout=10).text)
    data = _payload(size)
    resp = http.post(django_server.url + "/upload",
                     data={"description": "blob", "csrfmiddlewaretoken": token},
                     files={"file": ("blob.bin", data, "application/octet-stream")}, timeout=60)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"name": "blob.bin", "size": size,
                           "sha256": hashlib.sha256(data).hexdigest(), "description": "blob"}
    # The token is checked on uploads too.
    http.cookies.clear()
    refused = http.post(django_server.url + "/upload", data={"csrfmiddlewaretoken": token},
                        files={"file": ("x.bin", b"x")}, timeout=10)
    assert refused.status_code == 403


# -- Falcon, Bottle, Pyramid -------------------------------------------------

@pytest.fixture(scope="module")
def falcon_server():
    srv = conftest.spawn("examples.falcon_app:app", "--threads", "2", cwd=ROOT)
    yield srv
    srv.stop(timeout=15)


def test_falcon(falcon_server, http):
    resp = http.get(falcon_server.url + "/", timeout=10)
    assert (resp.status_code, resp.text) == (200, "Hello from Falcon!")
    resp = http.get(falcon_server.url + "/items/42", params={"q": "x"}, timeout=10)
    assert resp.json() == {"id": 42, "query": {"q": "x"}}
    assert http.get(falcon_server.url + "/items/abc", timeout=10).status_code == 404
    resp = http.post(falcon_server.url + "/items", json={"name": "pen"}, timeout=10)
    assert resp.status_code == 201
    assert resp.headers["Location"].endswith("/items/1")
    assert resp.json() == {"created": {"name": "pen"}}
    assert http.post(falcon_server.url + "/items", json=[1], timeout=10).status_code == 400
    resp = http.get(falcon_server.url + "/stream", timeout=10)
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    assert resp.text == "".join("row %d\n" % i for i in range(20))


@pytest.fixture(scope="module")
def bottle_server():
    srv = conftest.spawn("examples.bottle_app:app", cwd=ROOT)
    yield srv
    srv.stop(timeout=15)


def test_bottle(bottle_server, http):
    resp = http.get(bottle_server.url + "/hello/w%C3%B6rld", timeout=10)
    assert (resp.status_code, resp.text) == (200, "Hello, wörld, from Bottle!")
    resp = http.post(bottle_server.url + "/form", data=[("a", "1"), ("a", "2"), ("b", "x y")], timeout=10)
    assert resp.json() == {"a": ["1", "2"], "b": ["x y"]}
    data = _payload(512 * 1024 + 3)
    resp = http.post(bottle_server.url + "/upload", files={"file": ("b.bin", data)}, timeout=30)
    assert resp.json() == {"filename": "b.bin", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    first = http.get(bottle_server.url + "/cookie", timeout=10)
    assert first.json() == {"seen": "none"}
    assert http.get(bottle_server.url + "/cookie", timeout=10).json() == {"seen": "yes"}


@pytest.fixture(scope="module")
def pyramid_server():
    srv = conftest.spawn("examples.pyramid_app:app", cwd=ROOT)
    yield srv
    srv.stop(timeout=15)


def test_pyramid(pyramid_server, http):
    resp = http.get(pyramid_server.url + "/", timeout=10)
    assert (resp.status_code, resp.text) == (200, "Hello from Pyramid!")
    resp = http.get(pyramid_server.url + "/users/ada", timeout=10)
    assert resp.json() == {"name": "ada", "script_name": ""}
    # Mounted under a prefix by a trusted proxy (gunicorn's forwarder_headers
    # default: SCRIPT_NAME from 127.0.0.1): Pyramid routes below it and
    # builds its URLs with it.
    resp = http.get(pyramid_server.url + "/app/users/ada", headers={"SCRIPT_NAME": "/app"}, timeout=10)
    assert resp.json() == {"name": "ada", "script_name": "/app"}
    resp = http.get(pyramid_server.url + "/app/redirect", headers={"SCRIPT_NAME": "/app"},
                    allow_redirects=False, timeout=10)
    assert resp.headers["Location"] == pyramid_server.url + "/app/"
    resp = http.post(pyramid_server.url + "/echo", json={"k": [1, 2]}, timeout=10)
    assert resp.json() == {"received": {"k": [1, 2]}, "length": len(b'{"k": [1, 2]}')}
    resp = http.get(pyramid_server.url + "/redirect", allow_redirects=False, timeout=10)
    assert resp.status_code == 302
    assert resp.headers["Location"] == pyramid_server.url + "/"
