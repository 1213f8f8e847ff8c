"""PEP 3333 ``environ``: every CGI key and every ``wsgi.*`` key the server
must provide, checked over a real socket against ``apps/environ_dump.py``."""

import json
import socket

import pytest

import conftest
from _rawhttp import RawConn, get, request

GUNICORN = conftest.SERVER_KIND == "gunicorn"


@pytest.fixture(scope="module", params=conftest.WORKER_KINDS)
def server(request):
    srv = conftest.spawn("environ_dump:app", *conftest.kind_args(request.param),
                         env={"RSGI_TEST_ENV_MARKER": "must-not-leak"})
    yield srv
    srv.stop(timeout=15)


def environ_of(server, path="/", headers=(), **kwargs):
    resp = get(server, path, headers=headers, **kwargs)
    assert resp.status == 200, resp
    return json.loads(resp.body)


def environ_raw(server, data):
    resp = request(server, data)
    assert resp.status == 200, resp
    return json.loads(resp.body)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PURGE"])
def test_request_method(server, method):
    env = environ_of(server, "/m", method=method, body=b"x" if method in ("POST", "PUT") else b"")
    assert env["REQUEST_METHOD"] == method


def test_path_query_and_raw_uri(server):
    env = environ_of(server, "/a/b/c?x=1&y=%20z&x=2")
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/a/b/c"
    assert env["QUERY_STRING"] == "x=1&y=%20z&x=2"
    assert env["RAW_URI"] == "/a/b/c?x=1&y=%20z&x=2"


def test_query_string_present_but_empty(server):
    env = environ_of(server, "/nothing")
    assert env["QUERY_STRING"] == ""
    env = environ_of(server, "/nothing?")
    assert env["QUERY_STRING"] == ""


def test_path_info_is_percent_decoded_bytes_as_latin1(server):
    env = environ_of(server, "/caf%C3%A9/x%20y")
    assert env["PATH_INFO"] == "/caf\xc3\xa9/x y"
    assert env["RAW_URI"] == "/caf%C3%A9/x%20y"


def test_encoded_slash_is_decoded_in_path_info_only(server):
    env = environ_of(server, "/a%2Fb")
    assert env["PATH_INFO"] == "/a/b"
    assert env["RAW_URI"] == "/a%2Fb"


def test_server_name_and_port_are_the_bound_address(server):
    env = environ_of(server, "/", headers=[("X-Ignore", "1")])
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(server.port)
    # The Host header does not change them on a TCP listener.
    env = environ_raw(
        server, b"GET / HTTP/1.1\r\nHost: example.com:8080\r\nConnection: close\r\n\r\n")
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(server.port)
    assert env["HTTP_HOST"] == "example.com:8080"


@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/1.1"])
def test_server_protocol(server, version):
    env = environ_of(server, "/", version=version)
    assert env["SERVER_PROTOCOL"] == version


def test_remote_addr_and_port(server):
    with RawConn(server.connect()) as conn:
        local_port = conn.sock.getsockname()[1]
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        env = json.loads(conn.read_response().body)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"] == str(local_port)


def test_content_type_and_length_absent_when_not_sent(server):
    env = environ_of(server, "/")
    assert "CONTENT_TYPE" not in env
    assert "CONTENT_LENGTH" not in env
    assert "HTTP_CONTENT_TYPE" not in env
    assert "HTTP_CONTENT_LENGTH" not in env


def test_content_type_and_length_when_sent(server):
    env = environ_of(server, "/", method="POST", body=b"hello",
                     headers=[("Content-Type", "text/plain; charset=utf-8")])
    assert env["CONTENT_TYPE"] == "text/plain; charset=utf-8"
    assert env["CONTENT_LENGTH"] == "5"
    assert "HTTP_CONTENT_TYPE" not in env
    assert "HTTP_CONTENT_LENGTH" not in env


def test_http_headers_mapped(server):
    env = environ_of(server, "/", headers=[
        ("X-Custom-Header", "Value With Spaces"),
        ("accept", "text/html"),
        ("User-Agent", "rsgi-tests/1.0"),
    ])
    assert env["HTTP_X_CUSTOM_HEADER"] == "Value With Spaces"
    assert env["HTTP_ACCEPT"] == "text/html"
    assert env["HTTP_USER_AGENT"] == "rsgi-tests/1.0"
    assert env["HTTP_HOST"] == "127.0.0.1"


def test_repeated_headers_joined_with_comma(server):
    env = environ_of(server, "/", headers=[("X-Multi", "a"), ("X-Other", "z"), ("X-Multi", "b"),
                                           ("X-Multi", "c")])
    assert env["HTTP_X_MULTI"] == "a,b,c"
    assert env["HTTP_X_OTHER"] == "z"


def test_repeated_cookie_headers(server):
    env = environ_of(server, "/", headers=[("Cookie", "a=1"), ("Cookie", "b=2")])
    if GUNICORN:
        assert env["HTTP_COOKIE"] == "a=1,b=2"
    else:
        # RFC 9113 8.2.3 / RFC 6265 5.4: cookie pairs are separated by "; ".
        assert env["HTTP_COOKIE"] == "a=1; b=2"


def test_headers_with_underscore_are_dropped(server):
    env = environ_of(server, "/", headers=[("X-Auth-User", "good"), ("X_Auth_User", "evil"),
                                           ("X_Only_Underscore", "evil")])
    assert env["HTTP_X_AUTH_USER"] == "good"
    assert "HTTP_X_ONLY_UNDERSCORE" not in env
    assert "evil" not in json.dumps(env)


def test_wsgi_keys(server):
    env = environ_of(server, "/")
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.run_once"] is False
    assert env["wsgi.input_terminated"] is True
    assert "wsgi.input" in env and "wsgi.errors" in env
    assert "wsgi.multithread" in env and "wsgi.multiprocess" in env
    checks = env["__checks__"]
    assert checks["input_methods"] == ["__iter__", "read", "readline", "readlines"]
    assert checks["errors_methods"] == ["flush", "write", "writelines"]
    assert checks["file_wrapper_callable"] is True
    assert checks["key_types_str"] is True
    assert checks["cgi_values_str"] is True


def test_url_scheme_https_from_trusted_proxy_header(server):
    env = environ_of(server, "/", headers=[("X-Forwarded-Proto", "https")])
    assert env["wsgi.url_scheme"] == "https"
    env = environ_of(server, "/", headers=[("X-Forwarded-Proto", "http")])
    assert env["wsgi.url_scheme"] == "http"


def test_request_without_host_has_no_http_host(server):
    env = environ_raw(server, b"GET /no-host HTTP/1.0\r\n\r\n")
    assert "HTTP_HOST" not in env
    assert env["PATH_INFO"] == "/no-host"
    assert env["__checks__"]["cgi_values_str"]
    assert all(v is not None for k, v in env.items() if k.isupper())


def test_os_environ_not_copied(server):
    env = environ_of(server, "/")
    assert "RSGI_TEST_ENV_MARKER" not in env
    assert "must-not-leak" not in json.dumps(env)
    assert "PATH" not in env
    assert "HOME" not in env


def test_server_software(server):
    env = environ_of(server, "/")
    software = env["SERVER_SOFTWARE"]
    assert isinstance(software, str) and software
    assert software.lower().startswith("gunicorn" if GUNICORN else "rsgi")


@pytest.mark.parametrize(
    "args, multithread, multiprocess",
    [
        ([], False, False),
        (["--threads", "2"], True, False),
        (["-w", "2"], False, True),
        (["-w", "2", "--threads", "4"], True, True),
    ],
)
def test_multithread_multiprocess(start_server, args, multithread, multiprocess):
    srv = start_server("environ_dump:app", *args)
    env = environ_of(srv, "/")
    assert env["wsgi.multiprocess"] is multiprocess
    assert env["wsgi.multithread"] is multithread


def test_script_name_from_process_environment(start_server):
    srv = start_server("environ_dump:app", env={"SCRIPT_NAME": "/pre"})
    env = environ_of(srv, "/pre/x/y?q=1")
    assert env["SCRIPT_NAME"] == "/pre"
    assert env["PATH_INFO"] == "/x/y"
    assert env["QUERY_STRING"] == "q=1"
    assert env["RAW_URI"] == "/pre/x/y?q=1"
    env = environ_of(srv, "/pre")
    assert env["SCRIPT_NAME"] == "/pre"
    assert env["PATH_INFO"] == ""


def test_script_name_mismatch_is_not_served_as_200(start_server):
    srv = start_server("environ_dump:app", env={"SCRIPT_NAME": "/pre"})
    resp = get(srv, "/other/path")
    assert resp.status >= 400
    # The server is still alive afterwards.
    assert environ_of(srv, "/pre/ok")["PATH_INFO"] == "/ok"


def test_unix_socket(start_server):
    srv = start_server("environ_dump:app", unix=True)
    with RawConn(srv.connect()) as conn:
        assert conn.sock.family == socket.AF_UNIX
        conn.send(b"GET /over/unix?z=9 HTTP/1.1\r\nHost: example.org:8080\r\n"
                  b"Connection: close\r\n\r\n")
        resp = conn.read_response()
    assert resp.status == 200
    env = json.loads(resp.body)
    assert env["PATH_INFO"] == "/over/unix"
    assert env["QUERY_STRING"] == "z=9"
    assert env["wsgi.url_scheme"] == "http"
    assert isinstance(env["REMOTE_ADDR"], str)
    # No TCP address to report: SERVER_NAME/PORT come from the Host header.
    assert env["SERVER_NAME"] == "example.org"
    assert env["SERVER_PORT"] == "8080"
    # No client port on a unix socket, and no key left without a value.
    assert "REMOTE_PORT" not in env
    assert env["__checks__"]["cgi_values_str"]
