"""Replay the HTTP/1.1 request corpus against a live server.

Each case in ``tests/requests/{valid,invalid}/NNN.http`` is sent as raw bytes,
in one write, over a loopback socket to the server running ``echo:app``
(tests/apps/echo.py), with the case's ``settings`` turned into CLI flags.  The
same files drive the Rust parser tests; ``tests/requests/make_corpus.py``
documents the sidecar format and generates the cases.

- valid: one ``200`` per request, in order, whose JSON body (what the app saw
  in its environ) matches the sidecar; if the last request does not allow
  keep-alive, the server then closes the connection.
- invalid: ``valid_before`` responses of ``200``, then one response with the
  sidecar's ``status``, then the server closes the connection.

Cases are ordered by their settings so that each distinct set of settings
starts one server (``ServerPool``), not one per case.

With ``RSGI_TEST_SERVER=gunicorn`` the cases run against gunicorn 27 (gthread
worker, for keep-alive and pipelining), accepting ``gunicorn_status`` where rsgi
deliberately differs and skipping what gunicorn cannot do.
"""

import json
import re
import socket
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pytest

import conftest
from conftest import SERVER_KIND, spawn

CORPUS = Path(__file__).resolve().parent / "requests"

#: Time allowed for one case: send, read every response, see the close.
CASE_DEADLINE = 5.0

#: gunicorn setting name -> CLI flag (gunicorn's spelling, which rsgi keeps).
SETTING_FLAGS = {
    "limit_request_line": "--limit-request-line",
    "limit_request_fields": "--limit-request-fields",
    "limit_request_field_size": "--limit-request-field_size",
    "limit_request_body": "--limit-request-body",
    "header_map": "--header-map",
    "strip_header_spaces": "--strip-header-spaces",
    "permit_unconventional_http_method": "--permit-unconventional-http-method",
    "permit_unconventional_http_version": "--permit-unconventional-http-version",
    "casefold_http_method": "--casefold-http-method",
    "permit_obsolete_folding": "--permit-obsolete-folding",
    "forwarder_headers": "--forwarder-headers",
    "forwarded_allow_ips": "--forwarded-allow-ips",
}

#: Settings gunicorn does not have; cases using them are skipped under it.
RSGI_ONLY_SETTINGS = {"limit_request_body"}

ON_GUNICORN = SERVER_KIND == "gunicorn"

#: Repeated Cookie fields: rsgi joins them with "; " (RFC 9110 5.3 exception
#: for cookies); gunicorn joins every repeated field with ",".
COOKIE_SEPARATOR = "," if ON_GUNICORN else "; "


# ---------------------------------------------------------------------------
# the corpus
# ---------------------------------------------------------------------------


@dataclass
class Case:
    kind: str
    number: str
    raw: bytes
    sidecar: dict

    @property
    def id(self):
        return f"{self.kind}/{self.number}"

    @property
    def settings(self):
        return self.sidecar.get("settings") or {}


def settings_key(settings):
    return json.dumps(settings, sort_keys=True)


def load_cases():
    cases = []
    for kind in ("valid", "invalid"):
        for sidecar_path in sorted((CORPUS / kind).glob("[0-9][0-9][0-9].json")):
            raw = sidecar_path.with_suffix(".http").read_bytes()
            sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
            cases.append(Case(kind, sidecar_path.stem, raw, sidecar))
    # Default settings first, then each settings set together: one server each.
    cases.sort(key=lambda c: (c.settings != {}, settings_key(c.settings), c.kind != "valid",
                              c.number))
    return cases


CASES = load_cases()


def settings_args(settings):
    args = []
    for name, value in sorted(settings.items()):
        flag = SETTING_FLAGS[name]
        if value is True:
            args.append(flag)
        elif value is False:
            continue
        else:
            args.extend([flag, str(value)])
    return args


def base_args(kind="sync"):
    if kind != "sync":
        return ["-w", "1", *conftest.kind_args(kind)]
    if ON_GUNICORN:
        # The sync worker closes after every request; gthread keeps alive.
        return ["-w", "1", "-k", "gthread", "--threads", "4"]
    return ["-w", "1"]


# ---------------------------------------------------------------------------
# one server per settings set
# ---------------------------------------------------------------------------


class ServerPool:
    """Keeps the server running ``app`` with ``args`` for the current
    settings; restarts on a new set."""

    def __init__(self, app, args):
        self.app, self.args = app, args
        self.key = None
        self.server = None
        self.error = None

    def get(self, settings):
        key = settings_key(settings)
        if key != self.key or (self.server is not None and self.server.proc.poll() is not None):
            self.close()
            self.key = key
            try:
                self.server = spawn(self.app, *self.args, *settings_args(settings))
            except RuntimeError as exc:
                self.error = str(exc)
        if self.error:
            pytest.fail(f"server did not start with settings {key}:\n{self.error}")
        return self.server

    def close(self):
        if self.server is not None:
            self.server.stop(timeout=15)
        self.server = None
        self.error = None
        self.key = None


@pytest.fixture(scope="module", params=conftest.WORKER_KINDS)
def server_pool(request):
    pool = ServerPool("echo:app", base_args(request.param))
    yield pool
    pool.close()


# ---------------------------------------------------------------------------
# an HTTP/1.1 response reader
# ---------------------------------------------------------------------------


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list
    body: bytes

    def header(self, name):
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


STATUS_LINE = re.compile(rb"HTTP/(\d\.\d) (\d{3})(?: (.*))?")


class ResponseReader:
    """Reads responses from a socket within one deadline.

    Interim (1xx) responses are skipped; bodies are framed by Content-Length,
    chunked coding, or the close of the connection.
    """

    def __init__(self, sock, deadline):
        self.sock = sock
        self.deadline = deadline
        self.buf = bytearray()
        self.closed = False

    def _fill(self):
        """Receive more bytes; False once the server has closed."""
        if self.closed:
            return False
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no more bytes within {CASE_DEADLINE}s; have {bytes(self.buf)!r}")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError(
                f"no more bytes within {CASE_DEADLINE}s; have {bytes(self.buf)!r}") from None
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            return False
        self.buf += data
        return True

    def _until(self, marker):
        while True:
            idx = self.buf.find(marker)
            if idx >= 0:
                out = bytes(self.buf[:idx])
                del self.buf[:idx + len(marker)]
                return out
            if not self._fill():
                raise AssertionError(
                    f"connection closed while waiting for {marker!r}; have {bytes(self.buf)!r}")

    def _exact(self, count):
        while len(self.buf) < count:
            if not self._fill():
                raise AssertionError(
                    f"connection closed {count - len(self.buf)} bytes before the end of a body")
        out = bytes(self.buf[:count])
        del self.buf[:count]
        return out

    def _to_close(self):
        while self._fill():
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def _chunked(self):
        body = bytearray()
        while True:
            size_line = self._until(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while self._until(b"\r\n"):
                    pass  # trailer fields, up to the empty line
                return bytes(body)
            body += self._exact(size)
            assert self._exact(2) == b"\r\n", "chunk not followed by CRLF"

    def read_response(self):
        """The next final response, or None if the server closed cleanly first."""
        while True:
            while not self.buf and not self.closed:
                self._fill()
            if not self.buf and self.closed:
                return None
            head = self._until(b"\r\n\r\n")
            status_line, *lines = head.split(b"\r\n")
            match = STATUS_LINE.fullmatch(status_line)
            assert match, f"bad status line {status_line!r}"
            status = int(match.group(2))
            headers = []
            for line in lines:
                name, _, value = line.partition(b":")
                headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
            response = Response(match.group(1).decode(), status,
                                (match.group(3) or b"").decode("latin-1"), headers, b"")
            if 100 <= status < 200:
                continue
            if status in (204, 304):
                return response
            coding = response.header("Transfer-Encoding")
            length = response.header("Content-Length")
            if coding is not None and coding.lower().endswith("chunked"):
                response.body = self._chunked()
            elif length is not None:
                response.body = self._exact(int(length))
            else:
                response.body = self._to_close()
            return response

    def wait_closed(self):
        """Wait for the server to close; returns any bytes that came first."""
        return self._to_close()


# ---------------------------------------------------------------------------
# expectations
# ---------------------------------------------------------------------------


def environ_key(name):
    if name == "CONTENT-TYPE":
        return "CONTENT_TYPE"
    if name == "CONTENT-LENGTH":
        return "CONTENT_LENGTH"
    return "HTTP_" + name.replace("-", "_")


def expected_report(request):
    """What tests/apps/echo.py reports for a sidecar request."""
    headers = {}
    script_name = ""
    for name, value in request["headers"]:
        if name == "SCRIPT_NAME":
            script_name = value
        key = environ_key(name)
        if key in headers:
            separator = COOKIE_SEPARATOR if key == "HTTP_COOKIE" else ","
            headers[key] = headers[key] + separator + value
        else:
            headers[key] = value
    path = request["path"]
    if script_name and path.startswith(script_name):
        path = path[len(script_name):]
    return {
        "method": request["method"],
        "uri": request["uri"],
        "path_info": urllib.parse.unquote_to_bytes(path).decode("latin-1"),
        "script_name": script_name,
        "query": request["query"],
        "protocol": "HTTP/%d.%d" % tuple(request["version"]),
        "headers": headers,
        "body": request["body"],
    }


def expects_close(request):
    """Whether the server must close the connection after this request."""
    if request["method"] == "CONNECT":
        return True
    for name, value in request["headers"]:
        if name == "TRANSFER-ENCODING":
            codings = {c.strip(" \t").lower() for c in value.split(",")}
            if codings & {"gzip", "deflate", "compress"}:
                return True
    for name, value in request["headers"]:
        if name == "CONNECTION":
            token = value.strip(" \t").lower()
            if token == "close":
                return True
            if token == "keep-alive":
                return False
            break
    return tuple(request["version"]) <= (1, 0)


def check_valid(case, reader, expected=expected_report):
    """Each request's response is a 200 whose JSON body is ``expected(request)``
    (what the app saw), then the connection closes or stays clean."""
    requests = case.sidecar["requests"]
    for index, request in enumerate(requests):
        response = reader.read_response()
        assert response is not None, (
            f"server closed after {index} of {len(requests)} responses")
        assert response.status == 200, (
            f"request {index + 1}: status {response.status}, body {response.body[:300]!r}")
        report = json.loads(response.body)
        assert report == expected(request), f"request {index + 1} ({request['uri'][:60]})"
    if expects_close(requests[-1]):
        extra = reader.wait_closed()
        assert extra == b"", f"bytes after the last response: {extra[:300]!r}"
    else:
        assert bytes(reader.buf) == b"", f"unexpected bytes: {bytes(reader.buf)[:300]!r}"


def check_invalid(case, reader):
    sidecar = case.sidecar
    status = sidecar["status"]
    if ON_GUNICORN:
        status = sidecar.get("gunicorn_status", status)
    for index in range(sidecar["valid_before"]):
        response = reader.read_response()
        assert response is not None, f"server closed before valid request {index + 1}"
        assert response.status == 200, (
            f"valid request {index + 1}: status {response.status}, body {response.body[:300]!r}")
    response = reader.read_response()
    assert response is not None, f"server closed without answering (expected {status})"
    assert response.status == status, (
        f"expected {status}, got {response.status} {response.reason}: {response.body[:300]!r}")
    extra = reader.wait_closed()
    assert extra == b"", f"bytes after the error response: {extra[:300]!r}"


# ---------------------------------------------------------------------------
# the test
# ---------------------------------------------------------------------------


def test_corpus_is_complete():
    """Every .http has a sidecar and the corpus keeps its minimum size."""
    for kind in ("valid", "invalid"):
        https = {p.stem for p in (CORPUS / kind).glob("*.http")}
        jsons = {p.stem for p in (CORPUS / kind).glob("*.json")}
        assert https == jsons, f"{kind}: unpaired files {sorted(https ^ jsons)}"
    assert sum(c.kind == "valid" for c in CASES) >= 30
    assert sum(c.kind == "invalid" for c in CASES) >= 35


@pytest.mark.timeout(90)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_corpus_case(case, server_pool):
    if ON_GUNICORN:
        if "gunicorn_skip" in case.sidecar:
            pytest.skip("gunicorn: " + case.sidecar["gunicorn_skip"])
        unsupported = RSGI_ONLY_SETTINGS & set(case.settings)
        if unsupported:
            pytest.skip(f"gunicorn has no {', '.join(sorted(unsupported))} setting")
    replay(case, server_pool.get(case.settings))


def replay(case, server, expected=expected_report):
    """Send the case's bytes to ``server`` in one write and check what comes
    back (a valid case's reports against ``expected``), failing with the
    server log's tail."""
    with server.connect() as sock:
        try:
            sock.sendall(case.raw)
        except OSError:
            pass  # the server may answer and close before reading everything
        reader = ResponseReader(sock, time.monotonic() + CASE_DEADLINE)
        try:
            if case.kind == "valid":
                check_valid(case, reader, expected)
            else:
                check_invalid(case, reader)
        except (AssertionError, TimeoutError) as exc:
            raise AssertionError(
                f"{case.id}: {case.sidecar['description']}\n{exc}\n"
                f"--- server log (tail) ---\n{server.log()[-3000:]}") from exc
