"""TLS (``--certfile``/``--keyfile``, rustls): the real server on a loopback
port, certificates made at test time with openssl, and real clients:
Python's ssl (http.client), curl and ``openssl s_client``, with and without
client certificates."""

import http.client
import json
import os
import signal
import socket
import ssl
import subprocess

import pytest

import conftest
from _rawhttp import wait_for

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(conftest.SERVER_KIND == "gunicorn", reason="certificates made per test for rsgi"),
]

APP = "tls_apps:app"
BIG = bytes(range(256)) * 4096


def openssl(*args, cwd):
    tool = conftest.require_tool("openssl", "openssl")
    subprocess.run([tool, *args], cwd=str(cwd), check=True, capture_output=True, timeout=60)


def issue(d, name, ca, usage, cn="localhost"):
    """A P-256 key and a certificate for it signed by ``ca``."""
    (d / (name + ".ext")).write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature\nextendedKeyUsage=%s\n" % usage)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", name + ".key",
            "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=d)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key", "-set_serial",
            str(abs(hash(name)) % 10**9 + 1), "-days", "2", "-out", name + ".pem", "-extfile", name + ".ext", cwd=d)


@pytest.fixture
def pki(tmp_path):
    """A CA, a server certificate, a client certificate from the CA and one
    from another CA."""
    for ca in ("ca", "otherca"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                ca + ".key", "-out", ca + ".pem", "-days", "2", "-subj", "/CN=rsgi test " + ca, cwd=tmp_path)
    issue(tmp_path, "server", "ca", "serverAuth")
    issue(tmp_path, "server2", "ca", "serverAuth", cn="second")
    issue(tmp_path, "client", "ca", "clientAuth", cn="alice")
    issue(tmp_path, "stranger", "otherca", "clientAuth", cn="mallory")
    return tmp_path


def tls_args(pki, *extra):
    return ["--certfile", str(pki / "server.pem"), "--keyfile", str(pki / "server.key"), *extra]


def client_context(pki, cert=None):
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    ctx.set_alpn_protocols(["http/1.1"])
    if cert:
        ctx.load_cert_chain(str(pki / (cert + ".pem")), str(pki / (cert + ".key")))
    return ctx


def https(server, pki, cert=None):
    return http.client.HTTPSConnection("127.0.0.1", server.port, timeout=20, context=client_context(pki, cert))


def get_json(server, pki, cert=None):
    conn = https(server, pki, cert)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        assert resp.status == 200
        return json.loads(resp.read())
    finally:
        conn.close()


def test_python_ssl_client(start_server, pki):
    server = start_server(APP, *tls_args(pki, "--static-map", "/static=%s" % pki))
    conn = https(server, pki)
    conn.request("GET", "/")
    resp = conn.getresponse()
    doc = json.loads(resp.read())
    assert doc["scheme"] == "https" and doc["client_cert"] is None
    assert conn.sock.selected_alpn_protocol() == "http/1.1"
    assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    # Keep-alive on the same TLS connection: a body larger than the
    # loop's buffer, a 1 MiB response, a file through wsgi.file_wrapper
    # and a static file (both read into memory: no sendfile through TLS).
    body = os.urandom(300 * 1024)
    conn.request("POST", "/echo", body=body)
    assert conn.getresponse().read() == body
    conn.request("GET", "/big")
    assert conn.getresponse().read() == BIG
    conn.request("GET", "/file")
    assert conn.getresponse().read() == BIG
    conn.request("GET", "/static/ca.pem")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == (pki / "ca.pem").read_bytes()
    conn.close()
    # Plain HTTP on the TLS port is not served.
    data = server.exchange(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"https" not in data and b"HTTP/1.1 200" not in data


def test_curl_and_openssl_s_client(start_server, pki):
    server = start_server(APP, *tls_args(pki))
    # The master logs the line after it listens (and a client may connect).
    assert wait_for(lambda: "Listening at: https://127.0.0.1:%d" % server.port in server.log()), server.log()
    curl = conftest.require_tool("curl", "curl")
    out = subprocess.run([curl, "-sS", "--http1.1", "--cacert", str(pki / "ca.pem"),
                          "https://127.0.0.1:%d/" % server.port], capture_output=True, timeout=30, check=True).stdout
    assert json.loads(out)["scheme"] == "https"
    tool = conftest.require_tool("openssl", "openssl")
    res = subprocess.run([tool, "s_client", "-connect", "127.0.0.1:%d" % server.port, "-alpn", "http/1.1",
                          "-CAfile", str(pki / "ca.pem"), "-verify_return_error", "-quiet", "-ign_eof"],
                         input=b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                         capture_output=True, timeout=30)
    assert res.stdout.startswith(b"HTTP/1.1 200 OK") and res.stdout.endswith(BIG), res.stderr
    res = subprocess.run([tool, "s_client", "-connect", "127.0.0.1:%d" % server.port, "-alpn", "http/1.1",
                          "-CAfile", str(pki / "ca.pem")], input=b"", capture_output=True, timeout=30)
    text = res.stdout.decode("latin-1")
    assert "ALPN protocol: http/1.1" in text and "Verify return code: 0 (ok)" in text


def test_unix_socket_binds_stay_plain(start_server, pki):
    server = start_server(APP, *tls_args(pki), unix=True)
    data = server.exchange(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and json.loads(body)["scheme"] == "http"


def test_client_certificates_required(start_server, pki):
    server = start_server(APP, *tls_args(pki, "--cert-reqs", "2", "--ca-certs", str(pki / "ca.pem")))
    doc = get_json(server, pki, cert="client")
    assert doc["scheme"] == "https"
    expected = (pki / "client.pem").read_text()
    assert ssl.PEM_cert_to_DER_cert(doc["client_cert"]) == ssl.PEM_cert_to_DER_cert(expected)
    for cert in (None, "stranger"):
        with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException, OSError)):
            get_json(server, pki, cert=cert)
    # curl with the client certificate.
    curl = conftest.require_tool("curl", "curl")
    out = subprocess.run([curl, "-sS", "--cacert", str(pki / "ca.pem"), "--cert", str(pki / "client.pem"),
                          "--key", str(pki / "client.key"), "https://127.0.0.1:%d/" % server.port],
                         capture_output=True, timeout=30, check=True).stdout
    assert json.loads(out)["client_cert"].startswith("-----BEGIN CERTIFICATE-----")


def test_client_certificates_optional(start_server, pki):
    server = start_server(APP, *tls_args(pki, "--cert-reqs", "1", "--ca-certs", str(pki / "ca.pem")))
    assert get_json(server, pki)["client_cert"] is None
    assert get_json(server, pki, cert="client")["client_cert"] is not None


def test_a_stalled_handshake_stalls_nobody_and_is_dropped(start_server, pki):
    server = start_server(APP, *tls_args(pki, "-w", "1", "--timeout", "2"))
    stalled = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    try:
        stalled.sendall(b"\x16\x03\x01\x00")  # the start of a ClientHello, and no more
        for _ in range(3):
            assert get_json(server, pki)["scheme"] == "https"
        # Bounded like a slow request head: the server closes it.
        stalled.settimeout(20)
        try:
            assert stalled.recv(1024) == b""
        except ConnectionResetError:
            pass
    finally:
        stalled.close()


def test_certificate_reread_on_hup(start_server, pki):
    live_cert, live_key = pki / "live.pem", pki / "live.key"
    live_cert.write_bytes((pki / "server.pem").read_bytes())
    live_key.write_bytes((pki / "server.key").read_bytes())
    server = start_server(APP, "--certfile", str(live_cert), "--keyfile", str(live_key))

    def served_cn():
        ctx = client_context(pki)
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                subject = dict(x[0] for x in s.getpeercert()["subject"])
                return subject["commonName"]

    assert served_cn() == "localhost"
    live_cert.write_bytes((pki / "server2.pem").read_bytes())
    live_key.write_bytes((pki / "server2.key").read_bytes())
    os.kill(server.pid, signal.SIGHUP)
    assert wait_for(lambda: served_cn() == "second", timeout=30), server.log()


@pytest.mark.parametrize("extra, words", [
    (["--certfile", "missing.pem"], ["certfile", "missing.pem"]),
    (["--certfile", "{d}/server.pem", "--keyfile", "{d}/client.key"], ["certfile", "do not go together"]),
    (["--certfile", "{d}/server.pem", "--keyfile", "{d}/ca.pem"], ["keyfile", "private key"]),
    (["--certfile", "{d}/server.pem", "--keyfile", "{d}/server.key", "--ciphers", "HIGH"], ["ciphers"]),
    (["--certfile", "{d}/server.pem", "--keyfile", "{d}/server.key", "--ssl-version", "TLSv1"], ["ssl_version"]),
    (["--certfile", "{d}/server.pem", "--keyfile", "{d}/server.key", "--cert-reqs", "2"], ["ca-certs"]),
])
def test_bad_settings_are_one_line_at_start(pki, extra, words):
    argv = [conftest.server_executable(), APP, "-b", "127.0.0.1:%d" % conftest.free_port()]
    argv += [a.format(d=pki) for a in extra]
    res = subprocess.run(argv, cwd=str(conftest.APPS), capture_output=True, text=True, timeout=30)
    assert res.returncode != 0
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, res.stderr
    for w in words:
        assert w in lines[0], lines[0]
