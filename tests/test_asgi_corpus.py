"""The HTTP/1.1 request corpus (tests/requests) replayed against the ASGI
worker: parsing is shared with the WSGI worker, so every invalid case must
get the same status, and every valid case must show the ASGI app what the
WSGI environ shows (tests/apps/asgi_echo.py reports it in the same shape).

Not run with RSGI_TEST_SERVER=gunicorn: gunicorn's UvicornWorker parses
with uvicorn's parser, not gunicorn's, and answers 14 of the valid cases
differently (absolute-form targets, fragments, a leading empty line,
pipelined HTTP/1.0 keep-alive, chunk extensions, ...), so the comparison
says nothing about rsgi."""

import json
import time
import urllib.parse

import pytest

from conftest import SERVER_KIND, spawn
from test_http_corpus import (CASE_DEADLINE, CASES, ResponseReader, check_invalid, expected_report,
                              expects_close, settings_args, settings_key)

ON_GUNICORN = SERVER_KIND == "gunicorn"
WORKER = "uvicorn_worker.UvicornWorker" if ON_GUNICORN else "asgi"


def expected_asgi_report(request):
    """What the WSGI echo reports, less the WSGI-only keys (RAW_URI,
    SCRIPT_NAME): the ASGI path is the whole path."""
    report = expected_report(request)
    del report["uri"], report["script_name"]
    report["path_info"] = urllib.parse.unquote_to_bytes(request["path"]).decode("latin-1")
    report["path_matches"] = True
    return report


class _Pool:
    def __init__(self):
        self.key, self.server, self.error = None, None, None

    def get(self, settings):
        key = settings_key(settings)
        if key != self.key or (self.server is not None and self.server.proc.poll() is not None):
            self.close()
            self.key = key
            try:
                self.server = spawn("asgi_echo:app", "-w", "1", "-k", WORKER, *settings_args(settings))
            except RuntimeError as exc:
                self.error = str(exc)
        if self.error:
            pytest.fail(f"server did not start with settings {key}:\n{self.error}")
        return self.server

    def close(self):
        if self.server is not None:
            self.server.stop(timeout=15)
        self.key, self.server, self.error = None, None, None


@pytest.fixture(scope="module")
def pool():
    p = _Pool()
    yield p
    p.close()


def check_valid(case, reader):
    requests = case.sidecar["requests"]
    for index, request in enumerate(requests):
        response = reader.read_response()
        assert response is not None, f"server closed after {index} of {len(requests)} responses"
        assert response.status == 200, f"request {index + 1}: status {response.status}, body {response.body[:300]!r}"
        assert json.loads(response.body) == expected_asgi_report(request), f"request {index + 1} ({request['uri'][:60]})"
    if expects_close(requests[-1]):
        assert reader.wait_closed() == b""
    else:
        assert bytes(reader.buf) == b""


@pytest.mark.timeout(90)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_corpus_case_through_the_asgi_worker(case, pool):
    if ON_GUNICORN:
        pytest.skip("uvicorn's parser is not gunicorn's (see the module's docstring)")
    server = pool.get(case.settings)
    with server.connect() as sock:
        try:
            sock.sendall(case.raw)
        except OSError:
            pass
        reader = ResponseReader(sock, time.monotonic() + CASE_DEADLINE)
        try:
            if case.kind == "valid":
                check_valid(case, reader)
            else:
                check_invalid(case, reader)
        except (AssertionError, TimeoutError) as exc:
            raise AssertionError(f"{case.id}: {case.sidecar['description']}\n{exc}\n"
                                 f"--- server log (tail) ---\n{server.log()[-3000:]}") from exc
