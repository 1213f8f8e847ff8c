"""Starting rsgi from Python: ``rsgi.run`` (settings by name, checked by a
type checker) and the patterns projects use to start gunicorn from code
(``BaseApplication`` / ``Application`` subclasses, ``WSGIApplication``,
``gunicorn.app.wsgiapp.run``), each served by rsgi without gunicorn
installed. The helpers are test_gunicorn_compat.py's.
"""

import signal
import subprocess
import sys

import pytest

import conftest
from _rawhttp import get, wait_for
from test_gunicorn_compat import CONFIGS, body_json, corpus_env, servers, wait_log  # noqa: F401 (servers is a fixture)
from test_master import log_records


RUN_SCRIPT = """
import json, os, sys
import rsgi

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"pid": os.getpid(), "env": {"RUN_MARKER": os.environ.get("RUN_MARKER")}}).encode()]

def when_ready(server):
    server.log.info("run: ready")

target = app if sys.argv[1] == "object" else "corpus_app:app"
sys.exit(rsgi.run(target, bind=sys.argv[2], workers=2, raw_env=["RUN_MARKER=set"],
                  when_ready=when_ready, timeout="20"))
"""

CUSTOM_APP_SCRIPT = """
import sys
from gunicorn.app.base import BaseApplication

def app(environ, start_response):
    start_response("200 OK", [("X-Custom", "yes")])
    return [b"custom application"]

class StandaloneApplication(BaseApplication):
    def __init__(self, application, options=None):
        self.options = options or {}
        self.application = application
        super().__init__()

    def load_config(self):
        config = {key: value for key, value in self.options.items()
                  if key in self.cfg.settings and value is not None}
        for key, value in config.items():
            self.cfg.set(key.lower(), value)

    def load(self):
        return self.application

StandaloneApplication(app, {"bind": sys.argv[1], "workers": 1, "accesslog": "-"}).run()
"""


WSGIAPP_SCRIPT = """
import sys
from gunicorn.app.wsgiapp import WSGIApplication
from gunicorn.util import import_app

class StandaloneApplication(WSGIApplication):
    def __init__(self, app_uri, options=None):
        self.options = options or {}
        self.app_uri = app_uri
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key.lower(), value)

sys.path.insert(0, ".")  # gunicorn puts the start directory first before loading
assert callable(import_app("corpus_workers:TracingThreadWorker"))
StandaloneApplication("corpus_app:app", {"bind": sys.argv[1], "workers": 1, "accesslog": "-"}).run()
"""


INIT_APP_SCRIPT = """
import sys
from gunicorn.app.base import Application

def app(environ, start_response):
    start_response("200 OK", [])
    return [b"from init"]

class OldStyle(Application):
    def init(self, parser, opts, args):
        return {"bind": sys.argv[1], "workers": 1}

    def load(self):
        return app

OldStyle().run()
"""


def start_script(tmp_path, source, *args, env):
    script = tmp_path / "script.py"
    script.write_text(source)
    port = conftest.free_port()
    log = tmp_path / ("script-%d.log" % port)
    proc = subprocess.Popen([sys.executable, str(script), *args, "127.0.0.1:%d" % port], cwd=str(CONFIGS),
                            env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    srv = conftest.Server(proc, port, str(log))
    if not conftest.wait_for_tcp("127.0.0.1", port, proc):
        srv.stop(signal.SIGKILL)
        raise AssertionError(srv.log())
    return srv


@pytest.mark.parametrize("target", ["object", "uri"])
def test_rsgi_run_serves_an_app_with_settings_by_name(tmp_path, servers, target):
    srv = start_script(tmp_path, RUN_SCRIPT, target, env=corpus_env(tmp_path))
    servers.append(srv)
    assert body_json(get(srv, "/?env=RUN_MARKER"))["env"] == {"RUN_MARKER": "set"}
    assert wait_for(lambda: len([m for _, _, m in log_records(srv) if m.startswith("Booting worker")]) == 2)
    assert wait_log(srv, "run: ready")
    assert srv.stop() == 0


def test_rsgi_run_refuses_an_unknown_setting_with_one_line(tmp_path):
    res = subprocess.run([sys.executable, "-c", "import rsgi, sys; sys.exit(rsgi.run('corpus_app:app', wokers=2))"],
                         cwd=str(CONFIGS), env=corpus_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "wokers" in res.stderr, res.stderr


def test_rsgi_run_settings_are_typed_with_every_setting():
    from rsgi._rsgi import settings_table
    from rsgi._settings import Settings

    assert set(Settings.__annotations__) == {row[0] for row in settings_table()}


def test_rsgi_run_keywords_are_checked_by_a_type_checker(tmp_path):
    use = tmp_path / "use_run.py"
    use.write_text("import rsgi\n"
                   "def app(environ, start_response): return []\n"
                   "rsgi.run(app, bind=['127.0.0.1:1', 'unix:/tmp/s'], workers=2, post_fork=lambda s, w: None)\n"
                   "rsgi.run('m:app', wokers=2)\n"
                   "rsgi.run(app, timeout=[1])\n")
    res = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
                          str(use)], capture_output=True, text=True, timeout=300)
    errors = [l for l in res.stdout.splitlines() if ": error:" in l]
    assert [l.split(":")[1] for l in errors] == ["4", "5"], res.stdout
    assert '"wokers"' in errors[0] and '"timeout"' in errors[1]


def test_custom_application_pattern_starts_rsgi_without_gunicorn(tmp_path, servers):
    srv = start_script(tmp_path, CUSTOM_APP_SCRIPT, env=corpus_env(tmp_path, "gunicorn-missing"))
    servers.append(srv)
    resp = get(srv, "/x")
    assert resp.status == 200 and resp.body == b"custom application"
    assert resp.header("X-Custom") == "yes"
    assert resp.header("Server") == "rsgi"
    assert wait_log(srv, '"GET /x HTTP/1.1" 200')


def test_gunicorns_command_line_from_python_runs_rsgis_without_gunicorn(tmp_path, servers):
    source = "from gunicorn.app.wsgiapp import run\nrun()\n"
    srv = start_script(tmp_path, source, "corpus_app:app", "-w", "1", "-b", env=corpus_env(tmp_path, "gunicorn-missing"))
    servers.append(srv)
    assert body_json(get(srv, "/cli"))["path"] == "/cli"
    assert get(srv, "/").header("Server") == "rsgi"


def test_application_subclass_with_init_starts_rsgi_without_gunicorn(tmp_path, servers):
    srv = start_script(tmp_path, INIT_APP_SCRIPT, env=corpus_env(tmp_path, "gunicorn-missing"))
    servers.append(srv)
    assert get(srv, "/").body == b"from init"


def test_wsgi_application_subclass_with_an_app_uri_starts_rsgi_without_gunicorn(tmp_path, servers):
    srv = start_script(tmp_path, WSGIAPP_SCRIPT, env=corpus_env(tmp_path, "gunicorn-missing"))
    servers.append(srv)
    info = body_json(get(srv, "/y"))
    assert info["path"] == "/y"
    assert info["imported_in"] == info["pid"] != srv.pid   # imported in the worker
    assert wait_log(srv, '"GET /y HTTP/1.1" 200')
