"""ASGI 3.0 HTTP protocol edges under rsgi's ASGI worker, with the raw apps
of tests/apps/asgi_apps.py and raw sockets: the scope, streamed request
and response bodies, back-pressure, http.disconnect, errors before and
after the response started, the pathsend and trailers extensions, the
disconnect grace period, proxy rules, and the interface checks.

With RSGI_TEST_SERVER=gunicorn the cases that are not about rsgi's own
choices run against gunicorn with uvicorn-worker's UvicornWorker."""

import json
import os
import signal
import socket
import subprocess
import threading

import pytest

import conftest
from _rawhttp import RawConn, get, wait_for

rsgi_only = pytest.mark.skipif(conftest.SERVER_KIND != "rsgi", reason="rsgi's own behaviour or setting")

APP = "asgi_apps:app"
WORKER = "uvicorn_worker.UvicornWorker" if conftest.SERVER_KIND == "gunicorn" else "asgi"


def asgi(start_server, *args, app=APP, trace=None, env=None):
    env = dict(env or {})
    if trace is not None:
        env["ASGI_TRACE"] = str(trace)
    return start_server(app, "-k", WORKER, *args, env=env)


def read_trace(path):
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def scope_of(srv, path="/scope", headers=(), version="HTTP/1.1"):
    resp = get(srv, path, headers=headers, version=version)
    assert resp.status == 200, resp
    return json.loads(resp.body)


# -- the scope ---------------------------------------------------------------

def test_scope_fields(start_server):
    srv = asgi(start_server)
    scope = scope_of(srv, "/scope/caf%C3%A9%20x?a=1&b=%20", headers=[("X-Second", "2"), ("x-first", "1"), ("X-Second", "3")])
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    if conftest.SERVER_KIND == "rsgi":
        assert scope["asgi"]["spec_version"] == "2.4"  # (uvicorn: 2.3)
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/scope/café x"
    assert scope["raw_path"] == "/scope/caf%C3%A9%20x"
    assert scope["query_string"] == "a=1&b=%20"
    assert scope["root_path"] == ""
    # Lower-cased names, the client's order, repeats kept apart.
    assert scope["headers"] == [["host", "127.0.0.1"], ["x-second", "2"], ["x-first", "1"], ["x-second", "3"],
                                ["connection", "close"]]
    assert scope["client"][0] == "127.0.0.1" and isinstance(scope["client"][1], int)
    assert scope["server"] == ["127.0.0.1", srv.port]
    if conftest.SERVER_KIND == "rsgi":  # (uvicorn implements neither extension)
        assert set(scope["extensions"]) == {"http.response.pathsend", "http.response.trailers"}
    assert scope["state"] == ["counter", "started_at"]
    assert scope_of(srv, version="HTTP/1.0")["http_version"] == "1.0"


@rsgi_only
def test_root_path_prefixes_path(start_server):
    srv = asgi(start_server, "--root-path", "/api")
    scope = scope_of(srv, "/scope/x")
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/scope/x"
    assert scope["raw_path"] == "/api/scope/x"


def test_state_is_a_shallow_copy_per_request(start_server):
    srv = asgi(start_server)
    # The counter list is shared (shallow copy); the dict is the request's.
    assert [get(srv, "/state").body for _ in range(3)] == [b"1", b"2", b"3"]


def test_forwarded_scheme_and_client_follow_gunicorn_rules(start_server):
    # 127.0.0.1 is trusted by default: X-Forwarded-Proto sets the scheme.
    srv = asgi(start_server)
    assert scope_of(srv, headers=[("X-Forwarded-Proto", "https")])["scheme"] == "https"
    untrusted = asgi(start_server, "--forwarded-allow-ips", "10.9.9.9")
    assert scope_of(untrusted, headers=[("X-Forwarded-Proto", "https")])["scheme"] == "http"


@rsgi_only
def test_proxy_protocol_sets_the_client(start_server):
    srv = asgi(start_server, "--proxy-protocol", "v1")
    with RawConn(srv.connect()) as conn:
        conn.send(b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 8000\r\n"
                  b"GET /scope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        resp = conn.read_response()
    assert json.loads(resp.body)["client"] == ["203.0.113.7", 40000]


# -- request bodies ------------------------------------------------------------

def test_chunked_body_arrives_whole(start_server):
    srv = asgi(start_server)
    with RawConn(srv.connect()) as conn:
        conn.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                  b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        resp = conn.read_response()
    assert resp.status == 200
    assert resp.body == b"hello world"


def test_large_body_streams_in_several_events(start_server):
    srv = asgi(start_server)
    data = bytes(range(256)) * (3 * 4096 + 3)  # ~3 MiB: more than the 256 KiB window
    resp = get(srv, "/echo", method="POST", body=data, timeout=60)
    assert resp.status == 200
    assert resp.body == data
    assert int(resp.header("x-chunks")) > 1


def test_a_slow_reader_app_bounds_the_upload(start_server):
    srv = asgi(start_server)
    data = b"z" * (4 << 20)
    resp = get(srv, "/slow-read", method="POST", body=data, timeout=60)
    assert resp.body == str(len(data)).encode()


@pytest.mark.parametrize("sent", [0, 1024, 512 << 10])
def test_an_app_that_never_reads_still_answers_before_the_upload_ends(start_server, sent):
    srv = asgi(start_server)
    with RawConn(srv.connect()) as conn:
        # Announce far more than is ever sent: the answer cannot wait for it
        # (the app is called at the head, as uvicorn calls it, however
        # little of the body has come).
        conn.send(b"POST /noread HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n" + b"a" * sent)
        resp = conn.read_response()
    assert resp.status == 200
    assert resp.body == b"not reading"


def test_the_body_streams_into_receive_while_the_upload_goes_on(start_server):
    srv = asgi(start_server)
    with RawConn(srv.connect()) as conn:
        conn.send(b"POST /first-chunk HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n" + b"b" * 1000)
        resp = conn.read_response()
    # The first http.request event holds what had come, with more to come.
    assert resp.status == 200
    assert resp.header("x-more-body") == "True"
    assert 0 < len(resp.body) <= 1000 and set(resp.body) == {ord("b")}


# -- responses -----------------------------------------------------------------

def test_each_body_event_is_flushed_and_disconnect_is_reported(start_server, tmp_path):
    trace = tmp_path / "trace"
    srv = asgi(start_server, trace=trace)
    conn = RawConn(srv.connect())
    conn.send(b"GET /wait-disconnect HTTP/1.1\r\nHost: x\r\n\r\n")
    head = conn.read_until(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    # The first event arrives while the response is still open.
    assert conn.read_until(b"waiting\n").endswith(b"waiting\n")
    conn.close()
    assert wait_for(lambda: "disconnect seen" in read_trace(trace), timeout=10), srv.log()


def test_server_sent_events_in_order(start_server):
    srv = asgi(start_server)
    resp = get(srv, "/stream?n=5&delay=0.01")
    assert resp.framing == "chunked"
    assert resp.body == b"".join(b"data: %d\n\n" % i for i in range(5))


def test_receive_after_the_response_is_disconnect(start_server, tmp_path):
    trace = tmp_path / "trace"
    srv = asgi(start_server, trace=trace)
    assert get(srv, "/after-response").body == b"done"
    assert wait_for(lambda: "after response: http.disconnect" in read_trace(trace), timeout=10)


def test_a_finished_response_is_not_held_behind_blocking_work_after_it(start_server, tmp_path):
    # The app answers, then blocks its event loop until this client has
    # the answer (a flag file). A response finished in a batch must go out
    # while the app's step goes on (the worker holds back its wake-ups of
    # the I/O loop through a batch, and the loop sleeps at most 1 ms
    # meanwhile), not when the step ends.
    srv = asgi(start_server, trace=tmp_path / "trace")
    flag = tmp_path / "got-it"
    resp = get(srv, "/then-block?flag=" + str(flag), timeout=15)
    assert resp.body == b"answered"
    flag.write_text("yes")
    assert wait_for(lambda: "unblocked: True" in read_trace(tmp_path / "trace"), timeout=15)
    assert get(srv, "/state").status == 200


def test_requests_run_in_tasks_of_the_apps_task_factory(start_server):
    srv = asgi(start_server, app="asgi_apps:factory_app")
    assert get(srv, "/").body == b"MarkedTask"


def test_large_response_through_output_back_pressure(start_server, tmp_path):
    srv = asgi(start_server, trace=tmp_path / "trace")
    resp = get(srv, "/big?mb=8", timeout=60)
    assert resp.status == 200
    assert len(resp.body) == 8 << 20


def test_exception_before_start_is_a_500_with_traceback(start_server):
    srv = asgi(start_server)
    resp = get(srv, "/raise-before")
    assert resp.status == 500
    assert wait_for(lambda: "RuntimeError: boom before start" in srv.log(), timeout=10)
    assert "Exception in ASGI application" in srv.log()
    # The worker goes on.
    assert get(srv, "/state").status == 200


def test_exception_after_start_closes_the_connection(start_server):
    srv = asgi(start_server)
    with RawConn(srv.connect()) as conn:
        conn.send(b"GET /raise-after HTTP/1.1\r\nHost: x\r\n\r\n")
        head = conn.read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK")
        rest = conn.read_to_eof()
    assert rest == b"partial"  # the connection closed short of Content-Length: 100
    assert wait_for(lambda: "RuntimeError: boom after start" in srv.log(), timeout=10)


@rsgi_only  # uvicorn takes a plain `__call__` for ASGI 2; rsgi reads the arity
def test_an_app_returning_an_awaitable_that_is_no_coroutine_is_awaited(start_server):
    srv = asgi(start_server, app="asgi_apps:awaitable_app")
    for _ in range(2):
        resp = get(srv, "/")
        assert (resp.status, resp.body) == (200, b"awaited")


@rsgi_only  # uvicorn calls a plain function as ASGI 2 (a different error)
def test_an_app_returning_nothing_awaitable_is_a_500_with_the_reason(start_server):
    srv = asgi(start_server, "--asgi-lifespan", "off", app="asgi_apps:not_awaitable_app")
    assert get(srv, "/").status == 500
    assert wait_for(lambda: "can't be used in 'await' expression" in srv.log(), timeout=10), srv.log()
    assert get(srv, "/").status == 500


def test_the_task_coroutine_reads_as_running_to_inspect(start_server):
    # anyio's cancel scopes ask `inspect.getcoroutinestate(task.get_coro())`.
    srv = asgi(start_server, app="asgi_apps:coro_state_app")
    resp = get(srv, "/")
    assert (resp.status, resp.body) == (200, b"CORO_RUNNING True")


@rsgi_only  # uvicorn-worker's worker dies of the TERM itself: no atexit (gunicorn's sync worker runs them)
def test_a_stopping_worker_runs_the_apps_atexit_callbacks(start_server, tmp_path):
    marker = tmp_path / "atexit"
    srv = asgi(start_server, env={"ATEXIT_FILE": str(marker)})
    assert get(srv, "/state").status == 200
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=30) == 0
    pids = marker.read_text().split() if marker.exists() else []
    assert len(pids) == 1 and int(pids[0]) != srv.proc.pid, (pids, srv.log())


def test_returning_without_a_response_is_a_500(start_server):
    srv = asgi(start_server)
    assert get(srv, "/no-response").status == 500
    assert wait_for(lambda: "returned without starting response" in srv.log(), timeout=10)


@rsgi_only
def test_pathsend_sends_the_file(start_server, tmp_path):
    srv = asgi(start_server)
    path = tmp_path / "data.bin"
    data = os.urandom(300_000)
    path.write_bytes(data)
    resp = get(srv, "/pathsend?path=" + str(path))
    assert resp.status == 200
    assert resp.body == data


@rsgi_only
def test_trailers_follow_the_chunked_body(start_server):
    srv = asgi(start_server)
    resp = get(srv, "/trailers")
    assert resp.framing == "chunked"
    assert resp.body == b"hello world"
    assert resp.trailers == [("x-checksum", "abc123")]


def test_head_has_no_body_and_status_has_its_reason(start_server):
    srv = asgi(start_server)
    resp = get(srv, "/status?code=418")
    assert (resp.status, resp.reason) == (418, "I'm a Teapot")
    resp = get(srv, "/echo", method="HEAD")
    assert resp.status == 200 and resp.body == b""


# -- disconnects -----------------------------------------------------------------

@rsgi_only
def test_disconnect_grace_period_cancels_the_request(start_server, tmp_path):
    trace = tmp_path / "trace"
    srv = asgi(start_server, "--asgi-disconnect-grace-period", "0", trace=trace)
    conn = RawConn(srv.connect())
    conn.send(b"GET /ignore-disconnect HTTP/1.1\r\nHost: x\r\n\r\n")
    conn.read_until(b"started\n")
    conn.close()
    assert wait_for(lambda: "cancelled" in read_trace(trace), timeout=10), srv.log()


# -- the app's interface -----------------------------------------------------------

def _run(*args, cwd=conftest.APPS):
    env = dict(os.environ)
    for k in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "RSGI_CMD_ARGS"):
        env.pop(k, None)
    return subprocess.run([conftest.server_executable(), *args, "-b", "127.0.0.1:%d" % conftest.free_port()],
                          cwd=str(cwd), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=60)


def _errors(output):
    return [l for l in output.splitlines() if "[ERROR]" in l]


def _one_reason(res, words):
    """Exit status 4 (App failed to load, as gunicorn) and one error line
    that says why; the master's own lines about the exit follow it."""
    assert res.returncode == 4, res.stdout
    errors = [l for l in _errors(res.stdout) if "application" in l]
    assert len(errors) == 1, res.stdout
    for w in words:
        assert w in errors[0], errors[0]


@rsgi_only
def test_a_wsgi_app_on_the_asgi_worker_is_one_error_line():
    _one_reason(_run("asgi_apps:wsgi_app", "-k", "asgi"), ["asgi_apps:wsgi_app is a WSGI application"])


@rsgi_only
def test_an_asgi_app_on_a_wsgi_worker_is_one_error_line():
    _one_reason(_run("asgi_apps:app"), ["asgi_apps:app is an ASGI application", "UvicornWorker"])


@rsgi_only
def test_a_wrapper_whose_signature_cannot_tell_is_served(start_server):
    srv = asgi(start_server, "--asgi-lifespan", "off", app="asgi_apps:wrapped")
    assert get(srv, "/").body == b"ok"


def test_an_asgi2_app_is_served(start_server):
    srv = asgi(start_server, app="asgi_apps:Asgi2App")
    assert get(srv, "/").body == b"asgi2"


# -- lifespan ------------------------------------------------------------------------

@rsgi_only
def test_startup_failed_stops_rsgi_with_the_apps_message():
    env_msg = "database unreachable"
    env = dict(os.environ, ASGI_STARTUP_FAIL=env_msg)
    res = subprocess.run([conftest.server_executable(), APP, "-k", "asgi", "-b", "127.0.0.1:%d" % conftest.free_port()],
                         cwd=str(conftest.APPS), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=60)
    assert res.returncode == 3, res.stdout
    assert "Application startup failed: database unreachable" in res.stdout
    assert "Worker failed to boot." in res.stdout


def test_lifespan_auto_tolerates_an_app_that_raises_on_it(start_server):
    srv = asgi(start_server, app="asgi_apps:lifespan_raises")
    assert get(srv, "/").body == b"ok"
    assert "ASGI 'lifespan' protocol appears unsupported." in srv.log()


@rsgi_only
def test_lifespan_on_refuses_an_app_that_raises_on_it():
    res = _run("asgi_apps:lifespan_raises", "-k", "asgi", "--asgi-lifespan", "on")
    assert res.returncode == 3, res.stdout
    assert "Application startup failed" in res.stdout


@rsgi_only
def test_lifespan_off_sends_no_lifespan_events(start_server, tmp_path):
    trace = tmp_path / "trace"
    srv = asgi(start_server, "--asgi-lifespan", "off", app="asgi_apps:lifespan_raises", trace=trace)
    assert get(srv, "/").body == b"ok"
    assert "lifespan" not in srv.log()


def test_shutdown_on_graceful_stop_and_on_retirement(start_server, tmp_path):
    trace = tmp_path / "trace"
    srv = asgi(start_server, "--max-requests", "2", trace=trace)
    assert wait_for(lambda: [l for l in read_trace(trace) if l.startswith("startup")], timeout=15)
    for _ in range(2):
        assert get(srv, "/state").status == 200
    # The retired worker ran lifespan shutdown; its replacement started up.
    assert wait_for(lambda: any(l.startswith("shutdown") for l in read_trace(trace)), timeout=15), srv.log()
    assert wait_for(lambda: len([l for l in read_trace(trace) if l.startswith("startup")]) == 2, timeout=15)
    assert get(srv, "/state").status == 200
    assert srv.stop(signal.SIGTERM) == 0
    assert len([l for l in read_trace(trace) if l.startswith("shutdown")]) == 2


# -- supervision -----------------------------------------------------------------------

def test_graceful_stop_lets_a_running_request_finish(start_server, tmp_path):
    trace = tmp_path / "trace"
    srv = asgi(start_server, "--graceful-timeout", "20", trace=trace)
    result = {}

    def slow():
        result["resp"] = get(srv, "/sleep?s=1.5", timeout=30)

    t = threading.Thread(target=slow)
    t.start()
    # The slow request is in the app before the stop.
    assert wait_for(lambda: "sleeping" in read_trace(trace), timeout=15)
    srv.proc.send_signal(signal.SIGTERM)
    t.join(30)
    assert result["resp"].status == 200 and result["resp"].body == b"slept"
    assert srv.proc.wait(30) == 0


@rsgi_only
def test_timeout_kills_a_stuck_event_loop_with_its_traceback(start_server):
    srv = asgi(start_server, "--timeout", "2")
    try:
        get(srv, "/block?s=60", timeout=20)
    except (OSError, Exception):
        pass
    assert wait_for(lambda: "WORKER TIMEOUT" in srv.log(), timeout=20), srv.log()
    assert wait_for(lambda: "asgi_apps.py" in srv.log().split("WORKER TIMEOUT", 1)[1], timeout=10), srv.log()
    # A new worker serves.
    assert wait_for(lambda: srv.log().count("Booting worker") >= 2, timeout=20)
    assert get(srv, "/state").status == 200


@rsgi_only
def test_access_log_line(start_server):
    srv = asgi(start_server, "--access-logfile", "-")
    assert get(srv, "/echo?x=1", method="POST", body=b"abc").status == 200
    assert wait_for(lambda: '"POST /echo?x=1 HTTP/1.1" 200 3' in srv.log(), timeout=10), srv.log()


@rsgi_only
def test_request_hooks(start_server, tmp_path):
    conf, out = conftest.request_hooks_conf(tmp_path)
    srv = asgi(start_server, "-c", str(conf))
    assert get(srv, "/echo", method="POST", body=b"x").status == 200
    assert wait_for(lambda: read_trace(out) == ["pre POST /echo", "post /echo POST 200 OK"], timeout=10), read_trace(out)


def test_worker_connections_queues_the_rest(start_server, tmp_path):
    srv = asgi(start_server, "--worker-connections", "1")
    held = RawConn(srv.connect())
    held.send(b"GET /wait-disconnect HTTP/1.1\r\nHost: x\r\n\r\n")
    held.read_until(b"waiting\n")
    result = {}

    def other():
        result["resp"] = get(srv, "/state", timeout=30)

    t = threading.Thread(target=other)
    t.start()
    held.close()
    t.join(30)
    assert result["resp"].status == 200


@rsgi_only
def test_uvloop_is_used_when_installed(start_server):
    pytest.importorskip("uvloop")
    conf_app = "asgi_apps:app"
    srv = asgi(start_server, "--asgi-loop", "uvloop", app=conf_app)
    assert get(srv, "/state").status == 200


@rsgi_only
def test_statsd_counts_asgi_requests(start_server):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(20)
        srv = asgi(start_server, "--statsd-host", "127.0.0.1:%d" % sink.getsockname()[1])
        assert get(srv, "/status?code=404").status == 404
        seen = []
        while not any(b"gunicorn.request.status.404:1|c" in d for d in seen):
            seen.append(sink.recv(4096))
    assert any(d.startswith(b"gunicorn.requests:1|c") for d in seen), seen


def test_many_concurrent_keep_alive_clients_are_all_answered(start_server):
    """Thousands of requests from concurrent kept-alive connections, then
    one more: a wake-up of the event loop lost under load would leave
    requests unanswered (each read below has a deadline)."""
    srv = asgi(start_server)
    counts = [0] * 32
    errors = []

    def client(i):
        try:
            with RawConn(srv.connect(timeout=20), timeout=20) as conn:
                for _ in range(250):
                    conn.send(b"GET /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
                    resp = conn.read_response()
                    assert resp.status == 200 and resp.body == b"hi"
                    counts[i] += 1
        except Exception as exc:  # reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    assert sum(counts) == 32 * 250
    assert get(srv, "/state").status == 200
