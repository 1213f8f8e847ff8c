"""nginx (Debian's package) in front of rsgi, as deployed: nginx on a free
loopback port, rsgi behind it on a unix socket (and on TCP to check
--forwarded-allow-ips), driven through nginx with real clients: keep-alive to
the upstream, large uploads, a streamed response that nginx must not buffer,
X-Forwarded-For / X-Forwarded-Proto (nginx terminating TLS).

nginx runs as the current user with its configuration, pid file, logs and
temporary files in the test's own directory, in the foreground
(`daemon off;`), and is stopped by its PID. The configuration written here is
the one docs/deploy.md shows (deploy/nginx.conf), with the test's paths.
"""

import grp
import hashlib
import json
import os
import pwd
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

import conftest
from _rawhttp import wait_for

APP = "proxy_apps:app"
pytestmark = pytest.mark.skipif(conftest.SERVER_KIND == "gunicorn", reason="exercises rsgi's deployment")

# The server block of deploy/nginx.conf, with placeholders for the test.
DEPLOY_CONF = conftest.ROOT / "deploy" / "nginx.conf"


class Nginx:
    def __init__(self, directory, upstream):
        self.dir = Path(directory)
        self.port = conftest.free_port()
        self.tls_port = conftest.free_port()
        self.binary = conftest.require_tool("nginx", "nginx")
        self._cert()
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        site = "\n".join(l for l in DEPLOY_CONF.read_text().splitlines() if not l.lstrip().startswith("#"))
        # The deployment's site, on the test's ports and socket.
        site = site.replace("server unix:/run/rsgi/rsgi.sock", "server " + upstream)
        site = site.replace("listen 80;", "listen 127.0.0.1:%d;" % self.port)
        site = site.replace("listen 443 ssl;", "listen 127.0.0.1:%d ssl;" % self.tls_port)
        site = site.replace("/etc/ssl/certs/example.pem", str(self.dir / "cert.pem"))
        site = site.replace("/etc/ssl/private/example.key", str(self.dir / "key.pem"))
        site = site.replace("server_name example.com;", "server_name 127.0.0.1;")
        assert "/run/" not in site and "/etc/" not in site, site
        temp = "\n".join("    %s_temp_path %s;" % (kind, self.dir / kind)
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        conf = (
            "daemon off;\nuser %s %s;\nworker_processes 1;\npid %s;\nerror_log %s info;\n"
            "events { worker_connections 256; }\n"
            "http {\n    access_log %s;\n%s\n%s\n}\n"
            % (user, group, self.dir / "nginx.pid", self.dir / "error.log",
               self.dir / "access.log", temp, site))
        (self.dir / "nginx.conf").write_text(conf)
        self.log = open(self.dir / "stderr.log", "wb")
        self.proc = subprocess.Popen(
            [self.binary, "-p", str(self.dir), "-e", str(self.dir / "error.log"),
             "-c", str(self.dir / "nginx.conf")],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if not conftest.wait_for_tcp("127.0.0.1", self.port, self.proc, timeout=30):
            self.stop()
            raise RuntimeError("nginx did not start:\n" + self.errors())

    def _cert(self):
        self.cert = str(self.dir / "cert.pem")
        openssl = conftest.require_tool("openssl", "openssl")
        subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(self.dir / "key.pem"),
                        "-out", str(self.dir / "cert.pem")],
                       check=True, capture_output=True, timeout=60)

    def errors(self):
        out = ""
        for name in ("stderr.log", "error.log"):
            path = self.dir / name
            if path.exists():
                out += path.read_text(errors="replace")
        return out

    def url(self, path="/", tls=False):
        if tls:
            return "https://127.0.0.1:%d%s" % (self.tls_port, path)
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful shutdown
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def http():
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()


@pytest.fixture
def behind_nginx(start_server, tmp_path):
    """Start rsgi on ``bind`` (default: a unix socket) and nginx in front."""
    started = []

    def start(*args, bind=None, app=APP, cwd=None):
        sock = str(tmp_path / "rsgi.sock")
        bind = bind or "unix:" + sock
        srv = start_server(app, "--keep-alive", "75", *args, bind=bind, cwd=cwd, wait=False)
        assert wait_for(lambda: "Booting worker with pid" in srv.log() or srv.proc.poll() is not None,
                        timeout=30), srv.log()
        assert srv.proc.poll() is None, srv.log()
        if bind.startswith("unix:"):
            srv.unix_path = sock
            assert conftest.wait_for_unix(sock, srv.proc)
            upstream = bind
        else:
            upstream = bind
        nginx = Nginx(tmp_path, upstream)
        started.append(nginx)
        return srv, nginx

    yield start
    for nginx in started:
        nginx.stop()


def worker_pids(srv):
    return [int(p) for p in re.findall(r"Booting worker with pid: (\d+)", srv.log())]


def open_sockets(pid):
    count = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


def test_keep_alive_to_the_upstream(behind_nginx, http):
    srv, nginx = behind_nginx("-w", "1")
    worker = worker_pids(srv)[0]
    idle = open_sockets(worker)
    for i in range(20):
        # A new client connection each time: only nginx's upstream pool
        # (keepalive 16 in deploy/nginx.conf) can carry requests over.
        resp = requests.get(nginx.url("/env"), timeout=10, headers={"Connection": "close"})
        assert resp.status_code == 200
        env = resp.json()
        assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
        assert env["HTTP_CONNECTION"] in (None, "")  # nginx clears it for keep-alive
    # The upstream connections stay open between requests (rsgi keeps them
    # alive) and are far fewer than the requests (nginx reuses them).
    kept = open_sockets(worker) - idle
    assert 1 <= kept <= 16, kept
    # nginx writes a request's log line after its response has gone out,
    # so the client can be a line ahead of the log.
    def logged():
        with open(nginx.dir / "access.log") as f:
            return sum(1 for line in f if '"GET /env HTTP/1.1" 200' in line)
    assert wait_for(lambda: logged() >= 20, timeout=10)
    assert logged() == 20


@pytest.mark.parametrize("chunked", [False, True])
def test_large_upload_through_nginx(behind_nginx, http, chunked):
    srv, nginx = behind_nginx("-w", "2")
    data = os.urandom(24 * 1024 * 1024 + 11)
    body = (data[i:i + (1 << 20)] for i in range(0, len(data), 1 << 20)) if chunked else data
    resp = http.post(nginx.url("/upload"), data=body, timeout=120)
    assert resp.status_code == 200, nginx.errors()
    assert resp.json() == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_streamed_response_is_not_buffered(behind_nginx, tmp_path):
    srv, nginx = behind_nginx("-w", "1", "--threads", "2")
    gate = tmp_path / "gate"
    with requests.get(nginx.url("/gated?gate=%s" % gate), stream=True, timeout=30) as resp:
        assert resp.status_code == 200
        lines = resp.iter_lines()
        # "first" arrives while the app is still waiting on the gate: the
        # response went through nginx as it was produced.
        assert next(lines) == b"first"
        gate.touch()
        assert next(lines) == b"second"
        assert list(lines) == []


def test_streaming_example_through_nginx(behind_nginx, http):
    srv, nginx = behind_nginx(app="examples.streaming:app", cwd=conftest.ROOT)
    resp = http.get(nginx.url("/?n=40&delay=0.005"), timeout=30)
    assert resp.status_code == 200
    assert resp.text == "".join("line %d\n" % i for i in range(40))


def test_forwarded_headers_over_the_unix_socket(behind_nginx, http):
    srv, nginx = behind_nginx()
    plain = http.get(nginx.url("/env"), timeout=10).json()
    tls = http.get(nginx.url("/env", tls=True), verify=nginx.cert, timeout=10).json()
    assert plain["wsgi.url_scheme"] == "http"
    # nginx terminates TLS and says so in X-Forwarded-Proto; on a unix
    # socket the proxy is trusted whatever --forwarded-allow-ips says, as in
    # gunicorn (no address to check).
    assert tls["wsgi.url_scheme"] == "https"
    assert tls["HTTP_X_FORWARDED_PROTO"] == "https"
    assert tls["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"
    assert tls["HTTP_HOST"] == "127.0.0.1:%d" % nginx.tls_port
    assert tls["REMOTE_ADDR"] == ""
    # A client's own X-Forwarded-For is kept in front of nginx's entry.
    chained = http.get(nginx.url("/env"), headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10).json()
    assert chained["HTTP_X_FORWARDED_FOR"] == "203.0.113.9, 127.0.0.1"


@pytest.mark.parametrize("allow,scheme", [("127.0.0.1", "https"), ("192.0.2.7", "http"), ("*", "https")])
def test_forwarded_allow_ips_over_tcp(behind_nginx, http, allow, scheme):
    port = conftest.free_port()
    srv, nginx = behind_nginx("--forwarded-allow-ips", allow, bind="127.0.0.1:%d" % port)
    env = http.get(nginx.url("/env", tls=True), verify=nginx.cert, timeout=10).json()
    # X-Forwarded-Proto counts only from an address --forwarded-allow-ips lists.
    assert env["wsgi.url_scheme"] == scheme
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["HTTP_X_FORWARDED_PROTO"] == "https"
