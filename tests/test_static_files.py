"""Static files served by the I/O loop (``--static-map PREFIX=DIR``): the
real server on a loopback port, real clients (raw sockets, http.client,
curl), a static tree built per test in a temporary directory."""

import gzip
import hashlib
import http.client
import os
import shutil
import subprocess
import threading

import pytest

from _rawhttp import RawConn, get, wait_for

pytestmark = pytest.mark.timeout(60)

APP = "static_apps:app"
BIG = bytes(range(256)) * 4096  # 1 MiB
CSS = b"body { color: #123456; }\n" * 40
JS = b"console.log('rsgi static');\n" * 50


@pytest.fixture
def tree(tmp_path):
    """A static tree, a secret next to it, and symlinks that lead out."""
    root = tmp_path / "staticfiles"
    (root / "css").mkdir(parents=True)
    (root / "css" / "base.css").write_bytes(CSS)
    (root / "css" / "base.5af66c1b1797.css").write_bytes(CSS)
    (root / "app.js").write_bytes(JS)
    (root / "app.js.gz").write_bytes(gzip.compress(JS))
    (root / "app.js.br").write_bytes(b"BR:" + JS[:100])
    (root / "only.css.gz").write_bytes(gzip.compress(CSS))
    (root / "big.bin").write_bytes(BIG)
    (root / "empty.txt").write_bytes(b"")
    (root / "with space.txt").write_bytes(b"spaced")
    (root / "sub").mkdir()
    (root / "sub" / "inner.txt").write_bytes(b"inner")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"SECRET")
    (tmp_path / "secret.txt").write_bytes(b"SECRET")
    os.symlink(outside / "secret.txt", root / "escape.txt")
    os.symlink(outside, root / "linkdir")
    os.symlink("css/base.css", root / "inside-link.css")
    os.mkfifo(root / "pipe.css")
    return tmp_path


def serve(start_server, tree, *args):
    return start_server(APP, "--static-map", "/static=%s" % (tree / "staticfiles"), *args)


def test_get_head_and_the_app_beside(start_server, tree):
    server = serve(start_server, tree)
    r = get(server, "/static/css/base.css")
    assert r.status == 200 and r.body == CSS
    assert r.header("content-type") == "text/css; charset=utf-8"
    assert r.header("content-length") == str(len(CSS))
    assert r.header("etag", "").startswith('"') and r.header("last-modified", "").endswith(" GMT")
    assert r.header("cache-control") == "public, max-age=60"
    assert r.header("vary") == "Accept-Encoding"
    assert r.header("accept-ranges") == "bytes"
    h = get(server, "/static/css/base.css", method="HEAD")
    assert h.status == 200 and h.body == b"" and h.header("content-length") == str(len(CSS))
    assert h.header("etag") == r.header("etag")
    # Names with escapes, an empty file, a 1 MiB file through sendfile.
    assert get(server, "/static/with%20space.txt").body == b"spaced"
    e = get(server, "/static/empty.txt")
    assert e.status == 200 and e.body == b"" and e.header("content-length") == "0"
    big = get(server, "/static/big.bin")
    assert big.status == 200 and hashlib.sha256(big.body).digest() == hashlib.sha256(BIG).digest()
    assert big.header("content-type") == "application/octet-stream" and not big.has_header("vary")
    # The query string does not matter; other paths still go to the app.
    assert get(server, "/static/sub/inner.txt?v=3").body == b"inner"
    assert get(server, "/other").body == b"app:/other"
    assert get(server, "/static").body == b"app:/static"
    assert get(server, "/staticfoo/x").body == b"app:/staticfoo/x"


def test_hashed_names_are_immutable(start_server, tree):
    server = serve(start_server, tree)
    r = get(server, "/static/css/base.5af66c1b1797.css")
    assert r.status == 200 and r.header("cache-control") == "public, max-age=31536000, immutable"


def test_missing_files_are_404_not_the_app(start_server, tree):
    server = serve(start_server, tree)
    for path in ["/static/nope.css", "/static/sub", "/static/sub/", "/static/", "/static/only.css"]:
        r = get(server, path)
        assert r.status == 404, path
        assert b"app:" not in r.body
    r = get(server, "/static/app.js", method="POST", body=b"x=1")
    assert r.status == 405 and r.header("allow") == "GET, HEAD"


@pytest.mark.parametrize("path", [
    "/static/../secret.txt",
    "/static/css/../../secret.txt",
    "/static/%2e%2e/secret.txt",
    "/static/%2E%2E/secret.txt",
    "/static/.%2e/secret.txt",
    "/static/css%2f..%2f..%2fsecret.txt",
    "/static/..%2fsecret.txt",
    "/static/app.js%00.css",
    "/static/app.js%00",
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
    "/static/escape.txt",
    "/static/linkdir/secret.txt",
    "/static/inside-link.css",
    "/static/pipe.css",
    "/static/./app.js",
    "/static/%",
])
def test_no_way_out(start_server, tree, path):
    server = serve(start_server, tree)
    r = get(server, path)
    assert r.status in (400, 404), (path, r.status)
    assert b"SECRET" not in r.body and b"root:" not in r.body
    assert b"app:" not in r.body


def test_absolute_form_target(start_server, tree):
    server = serve(start_server, tree)
    with RawConn(server.connect()) as c:
        c.send(b"GET http://example.com/static/app.js HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
        r = c.read_response()
    assert r.status == 200 and r.body == JS


def test_conditional_requests(start_server, tree):
    server = serve(start_server, tree)
    r = get(server, "/static/css/base.css")
    etag, lm = r.header("etag"), r.header("last-modified")
    n = get(server, "/static/css/base.css", headers=[("If-None-Match", etag)])
    assert n.status == 304 and n.body == b"" and n.header("etag") == etag
    assert not n.has_header("content-length")
    assert get(server, "/static/css/base.css", headers=[("If-None-Match", '"other", W/' + etag)]).status == 304
    assert get(server, "/static/css/base.css", headers=[("If-Modified-Since", lm)]).status == 304
    # If-None-Match wins over If-Modified-Since.
    r2 = get(server, "/static/css/base.css", headers=[("If-None-Match", '"x"'), ("If-Modified-Since", lm)])
    assert r2.status == 200 and r2.body == CSS
    old = get(server, "/static/css/base.css", headers=[("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT")])
    assert old.status == 200 and old.body == CSS
    # A changed file gets a new validator.
    path = tree / "staticfiles" / "css" / "base.css"
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert get(server, "/static/css/base.css", headers=[("If-None-Match", etag)]).status == 200


def test_ranges(start_server, tree):
    server = serve(start_server, tree)
    size = len(BIG)
    r = get(server, "/static/big.bin", headers=[("Range", "bytes=100-199")])
    assert r.status == 206 and r.body == BIG[100:200]
    assert r.header("content-range") == "bytes 100-199/%d" % size
    assert r.header("content-length") == "100"
    r = get(server, "/static/big.bin", headers=[("Range", "bytes=-10")])
    assert r.status == 206 and r.body == BIG[-10:]
    r = get(server, "/static/big.bin", headers=[("Range", "bytes=%d-" % (size - 5))])
    assert r.status == 206 and r.body == BIG[-5:]
    r = get(server, "/static/big.bin", headers=[("Range", "bytes=%d-" % size)])
    assert r.status == 416 and r.header("content-range") == "bytes */%d" % size
    # Several ranges, or a stale If-Range: the whole file.
    r = get(server, "/static/big.bin", headers=[("Range", "bytes=0-1,5-6")])
    assert r.status == 200 and len(r.body) == size
    r = get(server, "/static/big.bin", headers=[("Range", "bytes=0-1"), ("If-Range", '"stale"')])
    assert r.status == 200 and len(r.body) == size
    etag = r.header("etag")
    r = get(server, "/static/big.bin", headers=[("Range", "bytes=0-1"), ("If-Range", etag)])
    assert r.status == 206 and r.body == BIG[:2]
    h = get(server, "/static/big.bin", method="HEAD", headers=[("Range", "bytes=0-9")])
    assert h.status == 206 and h.body == b"" and h.header("content-length") == "10"


def test_precompressed_siblings(start_server, tree):
    server = serve(start_server, tree)
    plain = get(server, "/static/app.js")
    assert plain.body == JS and not plain.has_header("content-encoding")
    assert plain.header("vary") == "Accept-Encoding"
    gz = get(server, "/static/app.js", headers=[("Accept-Encoding", "gzip")])
    assert gz.header("content-encoding") == "gzip" and gzip.decompress(gz.body) == JS
    assert gz.header("content-type") == "text/javascript; charset=utf-8"
    assert gz.header("vary") == "Accept-Encoding"
    br = get(server, "/static/app.js", headers=[("Accept-Encoding", "gzip, deflate, br")])
    assert br.header("content-encoding") == "br" and br.body.startswith(b"BR:")
    assert len({plain.header("etag"), gz.header("etag"), br.header("etag")}) == 3
    no = get(server, "/static/app.js", headers=[("Accept-Encoding", "br;q=0, gzip;q=0")])
    assert no.body == JS and not no.has_header("content-encoding")
    # 304 for the variant the client holds.
    again = get(server, "/static/app.js", headers=[("Accept-Encoding", "gzip"), ("If-None-Match", gz.header("etag"))])
    assert again.status == 304 and again.header("content-encoding") == "gzip"


def test_keep_alive_and_pipelining(start_server, tree):
    server = serve(start_server, tree)
    with RawConn(server.connect()) as c:
        req = b"GET /static/css/base.css HTTP/1.1\r\nHost: x\r\n\r\n"
        c.send(req + b"GET /app HTTP/1.1\r\nHost: x\r\n\r\n" + req + b"HEAD /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        first = c.read_response()
        second = c.read_response()
        third = c.read_response()
        fourth = c.read_response(method="HEAD")
        assert (first.body, second.body, third.body) == (CSS, b"app:/app", CSS)
        assert first.header("connection") == "keep-alive"
        assert fourth.status == 200 and fourth.header("content-length") == str(len(BIG))
        c.send(b"GET /static/app.js HTTP/1.0\r\n\r\n")
        last = c.read_response()
        assert last.body == JS and last.header("connection") == "close"
        assert c.is_closed_by_peer()


def test_http_client_and_curl(start_server, tree):
    server = serve(start_server, tree)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for _ in range(3):
        conn.request("GET", "/static/big.bin")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() == BIG
    conn.close()
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    # (The test tree's .br sibling is not real brotli: gzip only here.)
    out = subprocess.run([curl, "-sS", "--compressed", "-H", "Accept-Encoding: gzip", "-D", "-",
                          server.url + "/static/app.js"], capture_output=True, timeout=30, check=True).stdout
    assert out.endswith(JS) and b"content-encoding: gzip" in out.lower()
    out = subprocess.run([curl, "-sS", "-r", "0-9", server.url + "/static/big.bin"],
                         capture_output=True, timeout=30, check=True).stdout
    assert out == BIG[:10]


def test_static_files_while_the_app_is_busy(start_server, tree, tmp_path):
    """With its only app thread busy a worker stops accepting (new clients
    are for idle siblings), but a static request on a connection it holds
    is still answered: it needs no app thread."""
    started, release = tmp_path / "started", tmp_path / "release"
    env = {"BLOCK_STARTED": str(started), "BLOCK_RELEASE": str(release)}
    server = start_server(APP, "--static-map", "/static=%s" % (tree / "staticfiles"), env=env)
    req = b"GET /static/css/base.css HTTP/1.1\r\nHost: x\r\n\r\n"
    result = {}

    def blocked():
        result["r"] = get(server, "/block", timeout=40)

    with RawConn(server.connect()) as held:
        held.send(req)
        assert held.read_response().body == CSS
        t = threading.Thread(target=blocked)
        t.start()
        try:
            assert wait_for(started.exists, timeout=20)
            held.send(req)
            r = held.read_response()
            assert r.status == 200 and r.body == CSS
        finally:
            release.write_text("go")
            t.join(40)
    assert result["r"].body == b"app:/block"


def test_access_log(start_server, tree, tmp_path):
    log = tmp_path / "access.log"
    server = serve(start_server, tree, "--access-logfile", str(log))
    get(server, "/static/app.js", headers=[("User-Agent", "static-test")])
    get(server, "/static/missing.js")
    lines = wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 2 and log.read_text().splitlines(),
                     timeout=10)
    assert any('"GET /static/app.js HTTP/1.1" 200 %d' % len(JS) in l and "static-test" in l for l in lines)
    assert any('"GET /static/missing.js HTTP/1.1" 404' in l for l in lines)


@pytest.mark.parametrize("spec, message", [
    ("static=./x", "must start with '/'"),
    ("/static", "expected PREFIX=DIR"),
    ("/static=./does-not-exist", "does-not-exist"),
])
def test_bad_mapping_is_one_line_at_start(tree, spec, message):
    from conftest import server_executable
    proc = subprocess.run([server_executable(), APP, "-b", "127.0.0.1:1", "--static-map", spec],
                          cwd=str(tree), capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert message in err and "static_map" in err and len(err.splitlines()) == 1


def test_relative_directory_and_chdir(start_server, tree):
    from conftest import APPS
    server = start_server(APP, "--chdir", str(tree), "--pythonpath", str(APPS), "--static-map", "/assets/=staticfiles")
    assert get(server, "/assets/app.js").body == JS
