"""PEP 3333 ``start_response``: the write callable, exc_info rules, header
validation, hop-by-hop headers, lazy status and app exceptions.

The apps live in ``apps/pep3333.py``; one server serves the whole module.
"""

import pytest

import conftest
from _rawhttp import RawConn, get, wait_for

GUNICORN = conftest.SERVER_KIND == "gunicorn"


@pytest.fixture(scope="module", params=conftest.WORKER_KINDS)
def server(request):
    srv = conftest.spawn("pep3333:app", *conftest.kind_args(request.param))
    yield srv
    srv.stop(timeout=15)


def fetch(server, name, **kwargs):
    return get(server, "/" + name, **kwargs)


def log_after(server, mark, needle, timeout=10.0):
    """Wait until ``needle`` shows up in the server log after offset ``mark``."""
    return wait_for(lambda: needle in server.log()[mark:], timeout=timeout)


def test_write_callable_then_iterable(server):
    resp = fetch(server, "write_callable")
    assert resp.status == 200
    assert resp.body == b"one two three"


def test_write_callable_only(server):
    resp = fetch(server, "write_only")
    assert resp.status == 200
    assert resp.body == b"written-" * 100


def test_write_callable_http10(server):
    resp = fetch(server, "write_callable", version="HTTP/1.0")
    assert resp.status == 200
    assert resp.body == b"one two three"


def test_exc_info_before_headers_sent_replaces_response(server):
    resp = fetch(server, "exc_info_before")
    assert resp.status == 503
    assert resp.header("X-Replaced") == "yes"
    if not GUNICORN:
        # PEP 3333: the new status *and headers* replace the old ones.
        # gunicorn appends the second header list to the first.
        assert not resp.has_header("X-First")
    assert resp.body == b"replaced"


@pytest.mark.parametrize("name", ["exc_info_after", "exc_info_after_chunked"])
def test_exc_info_after_headers_sent_reraises_and_truncates(server, name):
    mark = len(server.log())
    with RawConn(server.connect()) as conn:
        conn.send(b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % name.encode())
        version, status, _, headers, _ = conn.read_head()
        # The server must close the connection: reading to EOF must not hang.
        rest = conn.read_to_eof()
    assert status == 200
    assert b"partial-" in rest
    assert b"must-not-be-sent" not in rest
    if name == "exc_info_after":
        assert len(rest) < 1000  # fewer bytes than the promised Content-Length
    else:
        assert not rest.endswith(b"0\r\n\r\n")  # no last-chunk: the client sees truncation
    assert log_after(server, mark, "exc-info-after-marker")


def test_second_start_response_without_exc_info_is_an_error(server):
    resp = fetch(server, "double_start")
    assert resp.status == 500
    assert b"must-not-be-sent" not in resp.body


@pytest.mark.parametrize(
    "name", ["bad_header_name", "bad_header_name_space", "bad_header_value", "bad_header_value_lf"])
def test_invalid_header_is_500_without_injection(server, name):
    resp = fetch(server, name)
    assert resp.status == 500
    assert not resp.has_header("Injected")
    assert b"Injected" not in resp.raw_head
    assert b"must-not-be-sent" not in resp.body


def test_invalid_status_is_500(server):
    resp = fetch(server, "bad_status")
    assert resp.status == 500
    assert b"must-not-be-sent" not in resp.body


def test_non_bytes_body_is_500(server):
    if GUNICORN:
        # gunicorn sends the headers before it type-checks the first item, then
        # aborts the connection.
        with RawConn(server.connect()) as conn:
            conn.send(b"GET /yields_str HTTP/1.1\r\nHost: x\r\n\r\n")
            data = conn.read_to_eof()
        assert b"text is not bytes" not in data
        return
    # No non-empty bytes were produced, so the headers are not out yet: 500.
    resp = fetch(server, "yields_str")
    assert resp.status == 500
    assert b"text is not bytes" not in resp.body


def test_hop_by_hop_and_server_headers_from_app_are_dropped(server):
    resp = fetch(server, "hop_by_hop")
    assert resp.status == 200
    assert resp.body == b"hop-by-hop"
    assert resp.header("X-Kept") == "yes"
    raw = resp.raw_head.decode("latin-1")
    for token in ("x-app-connection-token", "timeout=999", "x-app-coding", "x-app-protocol",
                  "x-app-server", "1990"):
        assert token not in raw, raw
    assert not resp.has_header("Keep-Alive")
    assert not resp.has_header("Upgrade")
    assert not resp.has_header("Transfer-Encoding")
    assert resp.header_list("Server") == ["gunicorn" if GUNICORN else "rsgi"]
    assert len(resp.header_list("Date")) == 1
    assert len(resp.header_list("Connection")) <= 1


def test_lazy_status_set_by_generator(server):
    resp = fetch(server, "lazy_status")
    assert resp.status == 201
    assert resp.header("X-Lazy") == "yes"
    assert resp.body == b"lazy-body"


def test_lazy_status_with_empty_body(server):
    resp = fetch(server, "lazy_status_empty")
    assert resp.status == 202
    assert resp.header("X-Lazy") == "yes"
    assert resp.body == b""


@pytest.mark.parametrize("name", ["raises", "raises_after_start", "raises_before_first_chunk"])
def test_app_exception_is_500_and_traceback_is_logged(server, name):
    mark = len(server.log())
    resp = fetch(server, name)
    assert resp.status == 500
    assert b"Traceback" not in resp.body
    assert b"app-exception-marker" not in resp.body
    assert b"pep3333" not in resp.body
    assert log_after(server, mark, "app-exception-marker")
    log = server.log()[mark:]
    assert "Traceback" in log
    assert "RuntimeError" in log


def test_server_survives_app_errors(server):
    for name in ("raises", "double_start", "bad_header_value", "exc_info_after"):
        with RawConn(server.connect()) as conn:
            conn.send(b"GET /%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % name.encode())
            conn.read_to_eof()
    resp = fetch(server, "hello")
    assert resp.status == 200
    assert resp.body == b"Hello, World!"


@pytest.mark.parametrize("threads", ["1", "4"])
def test_objects_an_app_keeps_stay_its_own(start_server, threads):
    # A worker reuses a finished request's start_response, write,
    # wsgi.early_hints and wsgi.input only when the app kept none of them:
    # kept ones must stay distinct, and must not reach a later response.
    import json

    srv = start_server("kept_objects:app", "--threads", threads)
    with RawConn(srv.connect()) as conn:
        conn.send(b"GET /keep HTTP/1.1\r\nHost: x\r\n\r\n")
        first = conn.read_response()
        assert (first.status, first.body) == (200, b"kept")
        for _ in range(3):
            conn.send(b"POST /check HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
            resp = conn.read_response(skip_interim=False)
            assert resp.status == 200, resp
            report = json.loads(resp.body)
            assert report["body"] == "hello"
            assert not report["same_start_response"]
            assert not report["same_early_hints"]
            assert not report["same_input"]
            assert report["old_write"] in ("returned", "OSError")
            assert report["old_early_hints"] in ("returned", "OSError")
        # Nothing the kept objects did reached the connection.
        conn.send(b"GET /check HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        last = conn.read_response(skip_interim=False)
        assert last.status == 200
        assert json.loads(last.body)["body"] == ""


@pytest.mark.skipif(GUNICORN, reason="gunicorn's write() goes to the socket: nothing waits")
def test_a_kept_write_waiting_in_another_thread_does_not_break_the_next_request(start_server, tmp_path):
    # The app keeps a finished response's write() and calls it from a
    # thread of its own until it waits inside it; the worker's next request
    # looks at that response's objects for reuse, and must neither reuse
    # them nor fail on them. No request is made until the thread waits (a
    # request would look at the objects earlier, while they are free).
    import os

    def wchan(tid):
        try:
            with open("/proc/%d/wchan" % tid) as f:
                return f.read()
        except OSError:
            return ""

    mark = tmp_path / "writes-wait"
    srv = start_server("kept_objects:app", env={"KEPT_MARK": str(mark)})
    with RawConn(srv.connect()) as conn:
        conn.send(b"GET /write-later HTTP/1.1\r\nHost: x\r\n\r\n")
        first = conn.read_response()
        assert (first.status, first.body) == (200, b"started")
    assert wait_for(lambda: os.path.exists(mark), timeout=10)
    tid = int(mark.read_text())
    # The third write() waits on the response's window (a futex) for good.
    # Nothing else keeps the thread in a futex: no request runs, so the GIL
    # is free.
    assert wait_for(lambda: "futex" in wchan(tid), timeout=10), wchan(tid)
    for _ in range(3):
        resp = get(srv, "/calls")
        assert (resp.status, resp.body) == (200, b"2")
    assert "Internal error" not in srv.log()
