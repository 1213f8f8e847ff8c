"""The HTTP/1.1 request corpus (tests/requests) replayed against the ASGI
worker: parsing is shared with the WSGI worker, so every invalid case must
get the same status, and every valid case must show the ASGI app what the
WSGI environ shows (tests/apps/asgi_echo.py reports it in the same shape).

Not run with RSGI_TEST_SERVER=gunicorn: gunicorn's UvicornWorker parses
with uvicorn's parser, not gunicorn's, and answers 14 of the valid cases
differently (absolute-form targets, fragments, a leading empty line,
pipelined HTTP/1.0 keep-alive, chunk extensions, ...), so the comparison
says nothing about rsgi."""

import urllib.parse

import pytest

from conftest import SERVER_KIND
from test_http_corpus import CASES, ServerPool, expected_report, replay

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


@pytest.fixture(scope="module")
def pool():
    p = ServerPool("asgi_echo:app", ["-w", "1", "-k", WORKER])
    yield p
    p.close()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_corpus_case_through_the_asgi_worker(case, pool):
    if ON_GUNICORN:
        pytest.skip("uvicorn's parser is not gunicorn's (see the module's docstring)")
    replay(case, pool.get(case.settings), expected_asgi_report)
