"""wsgi.early_hints sends `103 Early Hints` before the final response to
HTTP/1.1 clients, nothing to HTTP/1.0 clients, and nothing once the final
response has started."""

import pytest


@pytest.mark.timeout(60)
def test_early_hints_http11(start_server):
    srv = start_server("hints:app")
    data = srv.exchange(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n"), data
    assert data.count(b"103 Early Hints") == 2
    assert b"HTTP/1.1 200 OK\r\n" in data and data.endswith(b"\r\n\r\nok")


@pytest.mark.timeout(60)
def test_no_early_hints_for_http10(start_server):
    srv = start_server("hints:app")
    data = srv.exchange(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    assert data.startswith(b"HTTP/1.0 200 OK\r\n"), data
    assert b"103" not in data


@pytest.mark.timeout(60)
def test_early_hints_after_the_head_are_ignored(start_server):
    srv = start_server("hints:late")
    data = srv.exchange(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK\r\n"), data
    assert b"</ignored>" not in data
