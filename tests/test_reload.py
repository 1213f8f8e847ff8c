"""--reload: the master watches the app's modules and --reload-extra-file;
an edit gets new workers answering with the new code, an edit that breaks
the import keeps the old workers serving with the error logged, and fixing
it reloads again.  Both engines (inotify, poll); --preload.

Each test writes its app into a fresh directory and edits it there.  Tests
wait for log lines and answers, never for a length of time.
"""

import pytest

import conftest
from _rawhttp import get, wait_for
from test_master import booted_pids, log_records

pytestmark = pytest.mark.timeout(120)

APP_SOURCE = '''
import os
from pathlib import Path

VERSION = {version!r}
EXTRA = Path(__file__).with_name("extra.txt")
EXTRA_TEXT = EXTRA.read_text() if EXTRA.exists() else "-"


def app(environ, start_response):
    body = ("%s %s" % (VERSION, EXTRA_TEXT)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Worker-Pid", str(os.getpid()))])
    return [body]
'''


def write_app(directory, version):
    # Each version has its own length, so no stale bytecode can pass for it
    # (the tests also run with PYTHONDONTWRITEBYTECODE).
    (directory / "reloadable.py").write_text(APP_SOURCE.format(version=version))


def body(srv):
    resp = get(srv, "/")
    assert resp.status == 200, resp
    return resp.body.decode()


def messages(srv):
    return [msg for _, _, msg in log_records(srv)]


def watching(srv):
    return any(m.startswith("Reload: watching ") for m in messages(srv))


@pytest.fixture
def reload_server(start_server, tmp_path):
    def _start(*args):
        write_app(tmp_path, "v1")
        srv = start_server("reloadable:app", "--reload", *args, cwd=tmp_path,
                           env={"PYTHONDONTWRITEBYTECODE": "1"})
        assert wait_for(lambda: watching(srv)), srv.log()
        return srv
    return _start


@pytest.mark.parametrize("engine", ["auto", "inotify", "poll"])
def test_an_edit_gets_new_workers_with_the_new_code(reload_server, tmp_path, engine):
    srv = reload_server("-w", "2", "--reload-engine", engine)
    assert body(srv) == "v1 -"
    first = set(booted_pids(srv))
    write_app(tmp_path, "v2-two")
    assert wait_for(lambda: body(srv) == "v2-two -"), srv.log()
    # Every answer is the new code once the old workers are gone.
    assert wait_for(lambda: all(body(srv) == "v2-two -" for _ in range(6))), srv.log()
    assert set(booted_pids(srv)) - first
    assert "Reload: the new code loads: replacing the workers" in messages(srv)


def test_broken_code_keeps_the_old_workers_serving(reload_server, tmp_path):
    srv = reload_server("-w", "2")
    assert body(srv) == "v1 -"
    booted = booted_pids(srv)
    (tmp_path / "reloadable.py").write_text("def app(:\n    broken on purpose\n")
    failed = "Reload: the new code fails to load (see above): the workers keep serving the code they have"
    assert wait_for(lambda: failed in messages(srv)), srv.log()
    errors = [m for _, level, m in log_records(srv) if level == "ERROR"]
    assert any("SyntaxError" in m and "reloadable" in m for m in errors), srv.log()
    # The old workers still answer with the old code; none was replaced.
    assert all(body(srv) == "v1 -" for _ in range(6))
    assert booted_pids(srv) == booted
    # Fixing it reloads.
    write_app(tmp_path, "v3-three")
    assert wait_for(lambda: body(srv) == "v3-three -"), srv.log()
    assert srv.proc.poll() is None


def test_an_extra_file_triggers_a_reload(reload_server, tmp_path):
    (tmp_path / "extra.txt").write_text("first")
    srv = reload_server("--reload-extra-file", "extra.txt")
    assert body(srv) == "v1 first"
    (tmp_path / "extra.txt").write_text("second")
    assert wait_for(lambda: body(srv) == "v1 second"), srv.log()


def test_with_preload_an_extra_file_replaces_workers_and_a_module_edit_says_restart(start_server, tmp_path):
    write_app(tmp_path, "v1")
    (tmp_path / "extra.txt").write_text("first")
    srv = start_server("reloadable:app", "--reload", "--preload", "--reload-extra-file", "extra.txt",
                       cwd=tmp_path, env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert body(srv) == "v1 first"
    write_app(tmp_path, "v2-two")
    assert wait_for(lambda: any("--preload keeps the old code" in m for m in messages(srv))), srv.log()
    assert body(srv) == "v1 first"
    booted = booted_pids(srv)
    (tmp_path / "extra.txt").write_text("second")
    assert wait_for(lambda: len(booted_pids(srv)) > len(booted)), srv.log()
    # The preloaded app lives in the master: new workers serve it as it was.
    assert body(srv) == "v1 first"
