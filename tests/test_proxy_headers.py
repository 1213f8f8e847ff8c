"""Settings for running behind a proxy, as gunicorn applies them:
--forwarded-allow-ips with secure_scheme_headers (wsgi.url_scheme), the
forwarder headers (SCRIPT_NAME from a trusted front end), --header-map for
header names with '_', and the PROXY protocol v1/v2 with --proxy-allow-from
(REMOTE_ADDR, REMOTE_PORT, PROXY_PROTOCOL, PROXY_ADDR, PROXY_PORT).

Every connection comes from 127.0.0.1.  A "disallowed" peer is made by
trusting another address (--forwarded-allow-ips 10.1.2.3,
--proxy-allow-from 10.1.2.3), so loopback is not trusted.
"""

import json
import socket

import pytest

import conftest
from _rawhttp import RawConn

GUNICORN = conftest.SERVER_KIND == "gunicorn"
APP = "environ_dump:app"
SECURE_SCHEME_CONF = str(conftest.APPS / "config" / "secure_scheme.conf.py")
UNTRUSTED = ["--forwarded-allow-ips", "10.1.2.3"]
NOT_ALLOWED = ["--proxy-allow-from", "10.1.2.3"]
# gunicorn's sync worker closes after each response; its gthread worker keeps
# the connection alive, which the keep-alive test needs.
KEEPALIVE = ["-k", "gthread", "--threads", "2"] if GUNICORN else []

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def head(path="/p", *headers):
    lines = ["GET %s HTTP/1.1" % path, "Host: example.test", *headers, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def exchange(server, data):
    """Send ``data`` on a fresh connection: (status, environ dict or None)."""
    with RawConn(server.connect()) as conn:
        conn.send(data)
        resp = conn.read_response()
    env = json.loads(resp.body) if resp.status == 200 else None
    return resp.status, env


def environ(server, data):
    status, env = exchange(server, data)
    assert status == 200, status
    return env


def v1(proto="TCP4", src="192.0.2.1", dst="198.51.100.2", sport=5555, dport=80):
    return ("PROXY %s %s %s %d %d\r\n" % (proto, src, dst, sport, dport)).encode()


def v2(src="192.0.2.7", dst="198.51.100.9", sport=4242, dport=443, command=0x1, tlvs=b""):
    """A PROXY v2 header: PROXY (command 1) or LOCAL (0), TCP over IPv4/IPv6."""
    if command == 0:
        return V2_SIGNATURE + bytes([0x20, 0x00, 0, 0])
    family = socket.AF_INET6 if ":" in src else socket.AF_INET
    addresses = (socket.inet_pton(family, src) + socket.inet_pton(family, dst)
                 + sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + tlvs)
    fam_proto = 0x21 if family == socket.AF_INET6 else 0x11
    return V2_SIGNATURE + bytes([0x21, fam_proto]) + len(addresses).to_bytes(2, "big") + addresses


# -- wsgi.url_scheme from secure_scheme_headers ---------------------------------

@pytest.mark.parametrize("header", [
    "X-Forwarded-Proto: https",
    "X-Forwarded-Protocol: ssl",
    "X-Forwarded-Ssl: on",
])
def test_secure_scheme_header_from_a_trusted_peer_gives_https(start_server, header):
    srv = start_server(APP)  # default --forwarded-allow-ips: 127.0.0.1,::1
    env = environ(srv, head("/p", header))
    assert env["wsgi.url_scheme"] == "https"
    assert env["REMOTE_ADDR"] == "127.0.0.1"


@pytest.mark.parametrize("header", [
    "X-Forwarded-Proto: https",
    "X-Forwarded-Protocol: ssl",
    "X-Forwarded-Ssl: on",
])
def test_secure_scheme_header_from_an_untrusted_peer_is_ignored(start_server, header):
    srv = start_server(APP, *UNTRUSTED)
    env = environ(srv, head("/p", header))
    assert env["wsgi.url_scheme"] == "http"


def test_secure_scheme_header_with_another_value_is_http(start_server):
    srv = start_server(APP)
    env = environ(srv, head("/p", "X-Forwarded-Proto: http"))
    assert env["wsgi.url_scheme"] == "http"


def test_contradictory_scheme_headers_from_a_trusted_peer_are_400(start_server):
    srv = start_server(APP)
    status, _ = exchange(srv, head("/p", "X-Forwarded-Proto: https", "X-Forwarded-Ssl: off"))
    assert status == 400


def test_contradictory_scheme_headers_from_an_untrusted_peer_are_ignored(start_server):
    srv = start_server(APP, *UNTRUSTED)
    env = environ(srv, head("/p", "X-Forwarded-Proto: https", "X-Forwarded-Ssl: off"))
    assert env["wsgi.url_scheme"] == "http"


def test_star_trusts_every_peer(start_server):
    srv = start_server(APP, "--forwarded-allow-ips", "*")
    assert environ(srv, head("/p", "X-Forwarded-Proto: https"))["wsgi.url_scheme"] == "https"


def test_loopback_in_a_list_of_trusted_peers(start_server):
    srv = start_server(APP, "--forwarded-allow-ips", "10.1.2.3, 127.0.0.1")
    assert environ(srv, head("/p", "X-Forwarded-Proto: https"))["wsgi.url_scheme"] == "https"


def test_trusted_network_in_cidr_notation(start_server):
    srv = start_server(APP, "--forwarded-allow-ips", "127.0.0.0/8")
    assert environ(srv, head("/p", "X-Forwarded-Proto: https"))["wsgi.url_scheme"] == "https"


def test_secure_scheme_headers_from_the_config_file_replace_the_defaults(start_server):
    srv = start_server(APP, "-c", SECURE_SCHEME_CONF)
    assert environ(srv, head("/p", "X-Proto: secure"))["wsgi.url_scheme"] == "https"
    assert environ(srv, head("/p", "X-Proto: other"))["wsgi.url_scheme"] == "http"
    assert environ(srv, head("/p", "X-Forwarded-Proto: https"))["wsgi.url_scheme"] == "http"


def test_secure_scheme_headers_from_the_config_file_need_a_trusted_peer(start_server):
    srv = start_server(APP, "-c", SECURE_SCHEME_CONF, *UNTRUSTED)
    assert environ(srv, head("/p", "X-Proto: secure"))["wsgi.url_scheme"] == "http"


def test_forwarded_for_does_not_change_remote_addr(start_server):
    srv = start_server(APP)
    env = environ(srv, head("/p", "X-Forwarded-For: 203.0.113.9"))
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["HTTP_X_FORWARDED_FOR"] == "203.0.113.9"


# -- forwarder headers and --header-map -----------------------------------------

def test_script_name_header_from_a_trusted_peer(start_server):
    srv = start_server(APP)
    env = environ(srv, head("/app/p", "SCRIPT_NAME: /app"))
    assert env["SCRIPT_NAME"] == "/app"
    assert env["PATH_INFO"] == "/p"


def test_script_name_header_from_an_untrusted_peer_is_dropped(start_server):
    srv = start_server(APP, *UNTRUSTED)
    env = environ(srv, head("/app/p", "SCRIPT_NAME: /app"))
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/app/p"
    assert "HTTP_SCRIPT_NAME" not in env


def test_forwarder_headers_limit_which_underscore_headers_pass(start_server):
    srv = start_server(APP, "--forwarder-headers", "X_TENANT")
    env = environ(srv, head("/app/p", "SCRIPT_NAME: /app", "X_TENANT: blue"))
    assert env["HTTP_X_TENANT"] == "blue"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/app/p"


@pytest.mark.parametrize("mode,status,value", [
    (None, 200, None),            # default: drop
    ("drop", 200, None),
    ("refuse", 400, None),
    ("dangerous", 200, "bar"),
])
def test_header_map_for_names_with_underscores(start_server, mode, status, value):
    srv = start_server(APP, *(["--header-map", mode] if mode else []))
    got, env = exchange(srv, head("/p", "X_Foo: bar", "X-Other: kept"))
    assert got == status
    if env is not None:
        assert env.get("HTTP_X_FOO") == value
        assert env["HTTP_X_OTHER"] == "kept"


# -- PROXY protocol --------------------------------------------------------------

def assert_proxied(env, addr, port, proto, proxy_addr, proxy_port):
    assert env["REMOTE_ADDR"] == addr
    assert env["REMOTE_PORT"] == str(port)
    assert env["PROXY_PROTOCOL"] == proto
    assert env["PROXY_ADDR"] == proxy_addr
    assert env["PROXY_PORT"] == str(proxy_port)


@pytest.mark.parametrize("mode", ["v1", "auto"])
def test_proxy_v1_tcp4_sets_the_client_address(start_server, mode):
    srv = start_server(APP, "--proxy-protocol", mode)
    env = environ(srv, v1() + head())
    assert_proxied(env, "192.0.2.1", 5555, "TCP4", "198.51.100.2", 80)


@pytest.mark.parametrize("mode", ["v1", "auto"])
def test_proxy_v1_tcp6_sets_the_client_address(start_server, mode):
    srv = start_server(APP, "--proxy-protocol", mode)
    env = environ(srv, v1("TCP6", "2001:db8::1", "2001:db8::2", 6000, 443) + head())
    assert_proxied(env, "2001:db8::1", 6000, "TCP6", "2001:db8::2", 443)


@pytest.mark.parametrize("mode", ["v2", "auto"])
def test_proxy_v2_tcp4_sets_the_client_address(start_server, mode):
    srv = start_server(APP, "--proxy-protocol", mode)
    env = environ(srv, v2() + head())
    assert_proxied(env, "192.0.2.7", 4242, "TCP4", "198.51.100.9", 443)


def test_proxy_v2_tcp6_with_a_tlv_sets_the_client_address(start_server):
    srv = start_server(APP, "--proxy-protocol", "v2")
    tlv = bytes([0x04, 0, 4]) + b"abcd"  # PP2_TYPE_NOOP
    env = environ(srv, v2("2001:db8::5", "2001:db8::6", 7000, 8443, tlvs=tlv) + head())
    assert_proxied(env, "2001:db8::5", 7000, "TCP6", "2001:db8::6", 8443)


def test_proxy_v2_local_keeps_the_peer_address(start_server):
    srv = start_server(APP, "--proxy-protocol", "v2")
    env = environ(srv, v2(command=0) + head())
    assert env["PROXY_PROTOCOL"] == "LOCAL"
    if not GUNICORN:  # gunicorn 27 sets REMOTE_ADDR to None here
        assert env["REMOTE_ADDR"] == "127.0.0.1"


def test_proxy_flag_alone_means_auto(start_server):
    srv = start_server(APP, "--proxy-protocol")
    assert environ(srv, v1() + head())["REMOTE_ADDR"] == "192.0.2.1"
    assert environ(srv, v2() + head())["REMOTE_ADDR"] == "192.0.2.7"


@pytest.mark.parametrize("mode", ["v1", "v2", "auto"])
def test_without_a_proxy_header_the_peer_is_the_client(start_server, mode):
    srv = start_server(APP, "--proxy-protocol", mode)
    env = environ(srv, head())
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert "PROXY_PROTOCOL" not in env


def test_proxy_header_holds_for_the_whole_keep_alive_connection(start_server):
    srv = start_server(APP, "--proxy-protocol", "v1", *KEEPALIVE)
    keep = b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n"
    with RawConn(srv.connect()) as conn:
        conn.send(v1() + keep % 1)
        first = conn.read_response()
        conn.send(keep % 2)
        second = conn.read_response()
    assert first.status == second.status == 200
    assert json.loads(first.body)["REMOTE_ADDR"] == "192.0.2.1"
    # gunicorn 27's gthread worker forgets the PROXY header after the first
    # request of the connection; the header describes the whole connection.
    if not GUNICORN:
        assert json.loads(second.body)["REMOTE_ADDR"] == "192.0.2.1"


@pytest.mark.parametrize("mode,header", [
    ("v1", v1()),
    ("v1", v1("TCP6", "2001:db8::1", "2001:db8::2", 6000, 443)),
    ("v2", v2()),
    ("auto", v1()),
    ("auto", v2()),
])
def test_proxy_header_from_a_peer_not_allowed_is_403(start_server, mode, header):
    srv = start_server(APP, "--proxy-protocol", mode, *NOT_ALLOWED)
    status, _ = exchange(srv, header + head())
    assert status == 403


def test_plain_request_from_a_peer_not_allowed_is_served(start_server):
    srv = start_server(APP, "--proxy-protocol", "auto", *NOT_ALLOWED)
    assert environ(srv, head())["REMOTE_ADDR"] == "127.0.0.1"


def test_proxy_allow_from_star(start_server):
    srv = start_server(APP, "--proxy-protocol", "v1", "--proxy-allow-from", "*")
    assert environ(srv, v1() + head())["REMOTE_ADDR"] == "192.0.2.1"


@pytest.mark.parametrize("mode,header", [
    (None, v1()),              # off by default: a PROXY line is a bad request line
    ("off", v1()),
    ("v2", v1()),
    ("v1", v2()),
    ("v1", b"PROXY TCP4 999.0.2.1 198.51.100.2 5555 80\r\n"),
    ("v1", b"PROXY UNKNOWN\r\n"),
    ("v1", b"PROXY TCP4 192.0.2.1 198.51.100.2 5555\r\n"),
])
def test_proxy_header_that_is_not_expected_or_invalid_is_400(start_server, mode, header):
    srv = start_server(APP, *(["--proxy-protocol", mode] if mode else []))
    status, _ = exchange(srv, header + head())
    assert status == 400


def test_proxy_protocol_and_trusted_scheme_headers_together(start_server):
    """The scheme is trusted by the peer that connected (the proxy itself)."""
    srv = start_server(APP, "--proxy-protocol", "v1")
    env = environ(srv, v1() + head("/p", "X-Forwarded-Proto: https"))
    assert env["REMOTE_ADDR"] == "192.0.2.1"
    assert env["wsgi.url_scheme"] == "https"
