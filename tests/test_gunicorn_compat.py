"""gunicorn.conf.py files as projects write them, loaded unchanged.

The corpus in tests/configs/ (one real-world pattern per file; the first
line says what to expect: ``serve``, ``serve-own-bind``, ``refuse KIND``, or ``asgi``: checks, and needs an ASGI app to serve)
is run through ``--print-config`` side by side with gunicorn, through
``--check-config``, and served, each twice: with gunicorn installed and with
it hidden from imports (tests/hide_gunicorn, so rsgi's stand-in ``gunicorn``
package answers). Further tests follow individual patterns end to end:
prometheus multiprocess metrics, custom loggers, the Server header,
readiness files, post_fork under preload, statsd, worker classes,
``sys.path`` rules (``rsgi.run`` and the custom-application pattern are in
test_run_api.py).
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import conftest
from _rawhttp import get, wait_for
from test_master import log_records

pytestmark = pytest.mark.skipif(conftest.SERVER_KIND == "gunicorn", reason="rsgi's compatibility layer")

CONFIGS = Path(__file__).resolve().parent / "configs"
HIDE = str(Path(__file__).resolve().parent / "hide_gunicorn")
CORPUS = sorted(p.name for p in CONFIGS.glob("*.conf.py"))
SETTING_LINE = re.compile(r"^([a-z_0-9]+)\s+= (.*)$")
MODES = ["gunicorn-installed", "gunicorn-missing"]


def expectation(name):
    first = (CONFIGS / name).read_text().splitlines()[0]
    assert first.startswith("# corpus: "), name
    return first[len("# corpus: "):].split()


def gunicorn_executable():
    path = Path(sys.executable).parent / "gunicorn"
    if not path.exists():
        pytest.skip("gunicorn is not installed next to %s" % sys.executable)
    return str(path)


def corpus_env(tmp_path, mode="gunicorn-installed", **extra):
    """The same environment for gunicorn and rsgi: paths under tmp_path."""
    env = dict(os.environ)
    for key in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "RSGI_CMD_ARGS", "FORWARDED_ALLOW_IPS",
                "PORT", "STATSD_ADDR", "PYTHONPATH", "XDG_RUNTIME_DIR"):
        env.pop(key, None)
    prom = tmp_path / "prom"
    prom.mkdir(exist_ok=True)
    env.update(
        CORPUS_SOCK=str(tmp_path / "corpus.sock"),
        READY_FILE=str(tmp_path / "ready"),
        PROMETHEUS_MULTIPROC_DIR=str(prom),
        CORPUS_PORT="8000",
        CORPUS_LOG_DIR=str(tmp_path),
        PYTHONUNBUFFERED="1",
        PWD=str(CONFIGS),
    )
    if mode == "gunicorn-missing":
        env["PYTHONPATH"] = HIDE
    env.update(extra)
    return env


def run(executable, *args, env, timeout=60):
    return subprocess.run([executable, *args], cwd=str(CONFIGS), env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)


def printed(res):
    return [l for l in res.stdout.splitlines() if SETTING_LINE.match(l)]


def start(tmp_path, *args, env, bind=True, unix=None):
    """Start rsgi in tests/configs; returns a conftest.Server."""
    port = conftest.free_port()
    cmd = [conftest.server_executable(), *args]
    if bind:
        cmd += ["-b", "127.0.0.1:%d" % port]
    log = open(tmp_path / ("server-%d.log" % port), "wb")
    proc = subprocess.Popen(cmd, cwd=str(CONFIGS), env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    server = conftest.Server(proc, port, log.name, unix)
    ok = conftest.wait_for_unix(unix, proc) if unix else conftest.wait_for_tcp("127.0.0.1", port, proc)
    if not ok:
        server.stop(signal.SIGKILL)
        raise AssertionError("server did not start: %s\n%s" % (cmd, server.log()))
    return server


@pytest.fixture
def servers():
    started = []
    yield started
    for server in started:
        server.stop(timeout=15)


def body_json(resp):
    assert resp.status == 200, resp
    return json.loads(resp.body)


def wait_log(server, needle, timeout=20):
    return wait_for(lambda: needle in server.log(), timeout=timeout)


# -- the corpus, file by file -------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", CORPUS)
def test_corpus_prints_the_same_settings_as_gunicorn(tmp_path, name, mode):
    args = ["corpus_app:app", "-c", name, "--print-config"]
    theirs = run(gunicorn_executable(), *args, env=corpus_env(tmp_path))
    ours = run(conftest.server_executable(), *args, env=corpus_env(tmp_path, mode))
    assert theirs.returncode == 0, theirs.stderr
    assert ours.returncode == 0, ours.stderr
    assert printed(theirs), theirs.stdout
    assert printed(ours) == printed(theirs)
    assert "Traceback" not in ours.stderr


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", CORPUS)
def test_corpus_check_config(tmp_path, name, mode):
    res = run(conftest.server_executable(), "corpus_app:app", "-c", name, "--check-config",
              env=corpus_env(tmp_path, mode))
    expect = expectation(name)
    if expect[0] == "refuse":
        assert res.returncode == 1, res
        errors = [l for l in res.stderr.splitlines() if l.startswith("Error")]
        assert len(errors) == 1, res.stderr
        assert "the %s worker kind is not available yet" % expect[1] in errors[0]
        assert "Traceback" not in res.stderr
    else:
        assert res.returncode == 0, res.stderr


SERVED = [n for n in CORPUS if expectation(n)[0] == "serve"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", SERVED)
def test_corpus_serves(tmp_path, servers, name, mode):
    srv = start(tmp_path, "corpus_app:app", "-c", name, env=corpus_env(tmp_path, mode))
    servers.append(srv)
    info = body_json(get(srv, "/"))
    assert info["path"] == "/"
    assert "Traceback" not in srv.log()


# -- patterns end to end --------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_prometheus_multiprocess_metrics_merge_across_workers(tmp_path, servers, mode):
    env = corpus_env(tmp_path, mode)
    srv = start(tmp_path, "corpus_app:app", "-c", "prometheus_multiproc.conf.py", env=env)
    servers.append(srv)
    first = [body_json(get(srv, "/hello"))["pid"] for _ in range(3)]
    victim = first[0]
    live = Path(env["PROMETHEUS_MULTIPROC_DIR"]) / ("gauge_livesum_%d.db" % victim)
    assert live.exists()
    # child_exit marks the dead worker: its live-gauge file goes, its counts stay.
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: not live.exists())
    later = []
    assert wait_for(lambda: later.append(body_json(get(srv, "/hello"))["pid"]) or later[-1] != victim)
    page = get(srv, "/metrics").body.decode()
    # One sample merged from the dead worker's file and the live ones'.
    m = re.search(r'^corpus_requests_total\{path="/hello"\} ([0-9.]+)$', page, re.M)
    assert m, page
    assert float(m.group(1)) == len(first) + len(later)
    # The live gauge counts only workers whose files child_exit left.
    alive = re.search(r"^corpus_workers_alive ([0-9.]+)$", page, re.M)
    assert alive and 1.0 <= float(alive.group(1)) <= 2.0, page


@pytest.mark.parametrize("mode", MODES)
def test_custom_logger_writes_json_access_lines_and_skips_health_checks(tmp_path, servers, mode):
    srv = start(tmp_path, "corpus_app:app", "-c", "logger_json_access.conf.py",
                env=corpus_env(tmp_path, mode))
    servers.append(srv)
    assert get(srv, "/healthz").status == 200
    assert get(srv, "/orders?x=1").status == 200
    assert wait_log(srv, '"path": "/orders"'), srv.log()
    lines = [json.loads(l) for l in srv.log().splitlines() if l.startswith("{")]
    assert [l["path"] for l in lines] == ["/orders"]
    assert lines[0]["status"] == 200 and lines[0]["method"] == "GET"
    assert lines[0]["remote"] == "127.0.0.1"
    assert lines[0]["duration_ms"] >= 0


@pytest.mark.parametrize("mode", MODES)
def test_custom_logger_setup_filters_the_access_log(tmp_path, servers, mode):
    srv = start(tmp_path, "corpus_app:app", "-c", "logger_filter.conf.py",
                env=corpus_env(tmp_path, mode))
    servers.append(srv)
    assert get(srv, "/lb-status").status == 200
    assert get(srv, "/page", headers=[("User-Agent", "corpus-agent")]).status == 200
    assert wait_log(srv, '"GET /page HTTP/1.1" 200'), srv.log()
    log = srv.log()
    assert "/lb-status" not in log
    line = [l for l in log.splitlines() if "/page" in l][0]
    assert re.match(r'^127\.0\.0\.1 "GET /page HTTP/1\.1" 200 \d+ "corpus-agent" \d+ms$', line), line
    # Error-log lines go through the logger too (gunicorn's format).
    assert re.search(r"^\[[^\]]+\] \[\d+\] \[INFO\] Booting worker with pid: \d+$", log, re.M), log


@pytest.mark.parametrize("mode", MODES)
def test_usr1_has_a_custom_logger_reopen_its_files(tmp_path, servers, mode):
    srv = start(tmp_path, "corpus_app:app", "-c", "logger_files.conf.py", env=corpus_env(tmp_path, mode))
    servers.append(srv)
    access, error = tmp_path / "access.log", tmp_path / "error.log"
    assert get(srv, "/before").status == 200
    assert wait_for(lambda: access.exists() and "/before" in access.read_text())
    assert access.read_text().startswith("tagged 127.0.0.1 - - [")
    assert "Booting worker" in error.read_text()
    access.rename(tmp_path / "access.log.1")
    error.rename(tmp_path / "error.log.1")
    srv.proc.send_signal(signal.SIGUSR1)
    # Once the worker has reopened, its lines land in new files.
    assert wait_for(lambda: get(srv, "/after").status == 200 and access.exists()
                    and "/after" in access.read_text())
    assert "/before" not in access.read_text()
    assert wait_for(lambda: error.exists())


@pytest.mark.parametrize("mode", MODES)
def test_server_software_set_in_the_config_is_the_server_header(tmp_path, servers, mode):
    srv = start(tmp_path, "corpus_app:app", "-c", "server_software.conf.py",
                env=corpus_env(tmp_path, mode))
    servers.append(srv)
    resp = get(srv, "/")
    assert resp.header("Server") == "undisclosed"
    assert body_json(resp)["server_software"] == "undisclosed"
    # The server's own error pages too.
    bad = get(srv, "/", version="HTTP/9.9")
    assert bad.status >= 400 and bad.header("Server") == "undisclosed"


@pytest.mark.parametrize("mode", MODES)
def test_server_set_in_gunicorn_http_wsgi_is_the_server_header(tmp_path, servers, mode):
    srv = start(tmp_path, "corpus_app:app", "-c", "http_wsgi_server.conf.py",
                env=corpus_env(tmp_path, mode))
    servers.append(srv)
    assert get(srv, "/").header("Server") == "edge"


@pytest.mark.parametrize("mode", MODES)
def test_formats_set_on_gunicorns_own_logger_class_are_used(tmp_path, servers, mode):
    srv = start(tmp_path, "corpus_app:app", "-c", "logger_formats.conf.py",
                env=corpus_env(tmp_path, mode))
    servers.append(srv)
    assert get(srv, "/fmt").status == 200
    assert wait_log(srv, '{"access": "127.0.0.1 - - [')
    booting = [json.loads(l) for l in srv.log().splitlines()
               if l.startswith('{"ts"') and "Booting worker" in l]
    assert booting and booting[0]["level"] == "INFO", srv.log()
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}$", booting[0]["ts"])


def test_access_log_format_widths_pad_as_python_does(tmp_path, servers):
    srv = start(tmp_path, "corpus_app:app", "-c", "padded_access_format.conf.py", env=corpus_env(tmp_path))
    servers.append(srv)
    assert get(srv, "/col").status == 200
    assert wait_log(srv, '"/col"')
    line = [l for l in srv.log().splitlines() if '"/col"' in l][0]
    assert re.match(r'^\[[^\]]+\] APP <\d+> +127\.0\.0\.1       200   GET "/col" \d+ms$', line), line
    assert len(line.split(" APP ")[1].split("127.0.0.1")[0]) == 11  # "<pid>" padded to 10, then a space


def test_without_the_setting_the_server_header_is_rsgi(tmp_path, servers):
    srv = start(tmp_path, "corpus_app:app", env=corpus_env(tmp_path))
    servers.append(srv)
    assert get(srv, "/").header("Server") == "rsgi"


@pytest.mark.parametrize("mode", MODES)
def test_when_ready_writes_the_readiness_file_and_on_exit_removes_it(tmp_path, servers, mode):
    env = corpus_env(tmp_path, mode)
    srv = start(tmp_path, "corpus_app:app", "-c", "ready_file.conf.py", env=env)
    servers.append(srv)
    ready = Path(env["READY_FILE"])
    assert wait_for(ready.exists)
    assert ready.read_text() == str(srv.pid)
    assert wait_for(lambda: len([m for _, _, m in log_records(srv) if m.startswith("Booting worker")]) == 2)
    assert get(srv, "/").status == 200
    assert srv.stop() == 0
    assert not ready.exists()


@pytest.mark.parametrize("mode", MODES)
def test_post_fork_resets_connections_opened_in_the_master_under_preload(tmp_path, servers, mode):
    srv = start(tmp_path, "corpus_app:app", "-c", "preload_post_fork_db.conf.py",
                env=corpus_env(tmp_path, mode))
    servers.append(srv)
    info = body_json(get(srv, "/db"))
    assert info["pid"] != srv.pid
    assert info["opened_in"] == info["pid"]          # not the master's connection
    assert info["closed_before"] == [info["pid"]]     # post_fork closed the inherited one
    assert body_json(get(srv, "/"))["imported_in"] == srv.pid  # preloaded


@pytest.mark.parametrize("mode", MODES)
def test_statsd_host_that_does_not_resolve_is_a_warning(tmp_path, servers, mode):
    srv = start(tmp_path, "corpus_app:app", "-c", "statsd_unresolvable.conf.py",
                env=corpus_env(tmp_path, mode))
    servers.append(srv)
    assert get(srv, "/").status == 200
    warnings = [m for _, lvl, m in log_records(srv) if lvl == "WARNING" and "statsd" in m]
    assert len(warnings) == 1, srv.log()
    assert "statsd-sidecar.invalid:8125" in warnings[0]


def test_statsd_unix_socket_that_is_not_there_yet_is_a_warning(tmp_path, servers):
    missing = tmp_path / "no-sidecar" / "statsd.sock"
    srv = start(tmp_path, "corpus_app:app", "--statsd-host", "unix:%s" % missing, env=corpus_env(tmp_path))
    servers.append(srv)
    assert get(srv, "/").status == 200
    warnings = [m for _, lvl, m in log_records(srv) if lvl == "WARNING"]
    assert len(warnings) == 1 and warnings[0].startswith("Cannot reach statsd at unix:%s: " % missing), srv.log()


def test_statsd_from_the_environment_sends_gunicorns_metrics(tmp_path, servers):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(20)
        addr = "127.0.0.1:%d" % sink.getsockname()[1]
        srv = start(tmp_path, "corpus_app:app", "-c", "statsd_env.conf.py",
                    env=corpus_env(tmp_path, STATSD_ADDR=addr))
        servers.append(srv)
        assert get(srv, "/").status == 200
        seen = []
        while not any(b"requests:" in d for d in seen):
            seen.append(sink.recv(4096))
    hit = [d for d in seen if b"requests:" in d][0]
    assert hit.startswith(b"corpus.gunicorn.requests:1|c")
    assert hit.endswith(b"|#env:test,service:corpus")


@pytest.mark.parametrize("mode", MODES)
def test_unknown_names_are_ignored_with_one_debug_line(tmp_path, servers, mode):
    srv = start(tmp_path, "corpus_app:app", "-c", "unknown_names.conf.py", "--log-level", "debug",
                env=corpus_env(tmp_path, mode))
    servers.append(srv)
    assert get(srv, "/").status == 200
    lines = [(lvl, m) for _, lvl, m in log_records(srv) if "not settings" in m]
    assert lines == [("DEBUG", "Ignoring names in the configuration file that are not settings: "
                               "acceslogformat, command, keep_alive, logfile, pythonpath_extra")]


@pytest.mark.parametrize("mode", MODES)
def test_secure_scheme_headers_with_mixed_case_keys(tmp_path, servers, mode):
    srv = start(tmp_path, "corpus_app:app", "-c", "secure_scheme_headers.conf.py",
                env=corpus_env(tmp_path, mode))
    servers.append(srv)
    assert body_json(get(srv, "/"))["scheme"] == "http"
    assert body_json(get(srv, "/", headers=[("X-Forwarded-Proto", "https")]))["scheme"] == "https"
    assert body_json(get(srv, "/", headers=[("x-forwarded-ssl", "on")]))["scheme"] == "https"


@pytest.mark.parametrize("mode", MODES)
def test_bind_list_serves_on_a_port_and_a_unix_socket(tmp_path, servers, mode):
    port = conftest.free_port()
    env = corpus_env(tmp_path, mode, CORPUS_PORT=str(port))
    srv = start(tmp_path, "corpus_app:app", "-c", "bind_list.conf.py", env=env, bind=False,
                unix=env["CORPUS_SOCK"])
    servers.append(srv)
    assert body_json(get(srv, "/"))["path"] == "/"    # over the unix socket
    srv.unix_path, srv.port = None, port
    assert body_json(get(srv, "/"))["path"] == "/"    # over TCP


@pytest.mark.parametrize("mode", MODES)
def test_project_formatter_in_logconfig_dict_formats_every_line(tmp_path, servers, mode):
    srv = start(tmp_path, "corpus_app:app", "-c", "logconfig_project_formatter.conf.py",
                env=corpus_env(tmp_path, mode))
    servers.append(srv)
    assert get(srv, "/here").status == 200
    assert wait_log(srv, '"logger": "gunicorn.access"')
    # Every line is the project's JSON: the access line only through logging.
    assert all(l.startswith("{") for l in srv.log().splitlines()), srv.log()
    records = [json.loads(l) for l in srv.log().splitlines()]
    assert any(r["logger"] == "gunicorn.error" and r["message"].startswith("Booting worker") for r in records)
    access = [r for r in records if r["logger"] == "gunicorn.access"]
    assert access and "GET /here" in access[0]["message"], srv.log()
    assert {r["service"] for r in records} == {"corpus-api"}


def test_accesslog_file_with_a_logconfig_dict_gets_each_line_once_and_reopens(tmp_path, servers):
    """gunicorn: the accesslog file is a handler of gunicorn.access that a
    logging configuration leaving that logger alone keeps."""
    access = tmp_path / "acc.log"
    conf = tmp_path / "logs.conf.py"
    conf.write_text("accesslog = %r\nlogconfig_dict = {'version': 1, 'loggers': {'gunicorn.error': "
                    "{'level': 'INFO', 'handlers': ['h'], 'propagate': False}}, 'root': {'handlers': ['h']},"
                    " 'handlers': {'h': {'class': 'logging.StreamHandler'}}}\n" % str(access))
    srv = start(tmp_path, "corpus_app:app", "-c", str(conf), env=corpus_env(tmp_path))
    servers.append(srv)
    assert get(srv, "/once").status == 200
    assert wait_for(lambda: access.exists() and "/once" in access.read_text())
    assert get(srv, "/twice").status == 200
    assert wait_for(lambda: "/twice" in access.read_text())
    lines = access.read_text().splitlines()
    assert [l.split('"')[1] for l in lines] == ["GET /once HTTP/1.1", "GET /twice HTTP/1.1"]
    access.rename(tmp_path / "acc.log.1")
    srv.proc.send_signal(signal.SIGUSR1)
    assert wait_for(lambda: get(srv, "/after").status == 200 and access.exists()
                    and "/after" in access.read_text())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name,worker", [("meinheld_worker.conf.py", "meinheld.gmeinheld.MeinheldWorker"),
                                         ("eventlet_egg.conf.py", "meinheld.gmeinheld.MeinheldWorker")])
def test_abandoned_wsgi_workers_run_on_rsgis_worker_with_one_warning(tmp_path, servers, mode, name, worker):
    srv = start(tmp_path, "corpus_app:app", "-c", name, env=corpus_env(tmp_path, mode))
    servers.append(srv)
    assert get(srv, "/").status == 200
    warnings = [m for _, lvl, m in log_records(srv) if lvl == "WARNING"]
    assert warnings == ["Worker class %s is no longer maintained; rsgi's own worker serves the app instead."
                        % worker], srv.log()


@pytest.mark.parametrize("name,using", [("sync_subclass.conf.py", "sync"),
                                        ("gthread_subclass.conf.py", "gthread")])
def test_worker_subclasses_map_by_their_base_class(tmp_path, servers, name, using):
    srv = start(tmp_path, "corpus_app:app", "-c", name, env=corpus_env(tmp_path, "gunicorn-missing"))
    servers.append(srv)
    assert get(srv, "/").status == 200
    assert ("Using worker: %s" % using) in [m for _, _, m in log_records(srv)]


# -- ASGI worker classes --------------------------------------------------------------

UVICORN_WORKER_PACKAGE = """
import sys, types
mod = types.ModuleType("uvicorn_worker")
from gunicorn.workers.base import Worker
class UvicornWorker(Worker):
    CONFIG_KWARGS = {"loop": "auto", "http": "auto"}
UvicornWorker.__module__ = "uvicorn_worker"
mod.UvicornWorker = UvicornWorker
sys.modules["uvicorn_worker"] = mod
worker_class = "uvicorn_worker.UvicornWorker"
"""


@pytest.mark.parametrize("spelling", [
    ["--worker-class=uvicorn.workers.UvicornWorker"],
    ["-k", "uvicorn.workers.UvicornH11Worker"],
    ["-k", "uvicorn_worker.UvicornWorker"],
    ["-k", "uvicorn_worker.UvicornH11Worker"],
    ["-k", "asgi"],
    ["-c", "uvicorn_worker_package"],
])
@pytest.mark.parametrize("mode", MODES)
def test_every_spelling_of_an_asgi_worker_runs_the_asgi_worker(tmp_path, start_server, spelling, mode):
    if conftest.SERVER_KIND != "rsgi":
        pytest.skip("rsgi's own worker selection")
    if spelling[0] == "-c":
        conf = tmp_path / "uvicorn_worker_package.conf.py"
        conf.write_text(UVICORN_WORKER_PACKAGE)
        spelling = ["-c", str(conf)]
    env = corpus_env(tmp_path, mode)
    env.pop("PWD")
    srv = start_server("asgi_apps:app", *spelling, env=env)
    data = srv.exchange(b"GET /modules HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK\r\n"), data
    # Neither uvicorn nor gunicorn was imported to choose the worker (a
    # configuration file's own imports aside).
    if spelling[0] != "-c":
        assert json.loads(data.split(b"\r\n\r\n", 1)[1]) == [], data
    log = srv.log()
    assert "Using worker: asgi" in log, log


def test_a_worker_class_of_its_own_is_refused_with_one_line(tmp_path):
    conf = tmp_path / "own.conf.py"
    conf.write_text("from gunicorn.workers.base import Worker\n"
                    "class OwnLoop(Worker):\n    pass\nworker_class = OwnLoop\n")
    res = run(conftest.server_executable(), "corpus_app:app", "-c", str(conf), "--check-config",
              env=corpus_env(tmp_path, "gunicorn-missing"))
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and "OwnLoop" in res.stderr, res.stderr


def test_uvicorn_config_kwargs_map_onto_settings():
    from rsgi import _compat

    settings, ignored = _compat.uvicorn_settings({
        "loop": "uvloop", "lifespan": "off", "http": "h11", "root_path": "/api",
        "forwarded_allow_ips": ["10.0.0.1", "10.0.0.2"], "proxy_headers": True, "ws": "auto",
        "timeout_keep_alive": 30})
    assert settings == {"asgi_loop": "uvloop", "asgi_lifespan": "off", "root_path": "/api",
                        "forwarded_allow_ips": "10.0.0.1,10.0.0.2"}
    assert ignored == ["http='h11'", "timeout_keep_alive=30"]
    assert _compat.uvicorn_settings({"proxy_headers": False}) == ({"forwarded_allow_ips": ""}, [])


# -- sys.path --------------------------------------------------------------------

def test_config_and_app_import_from_launch_dir_chdir_and_pythonpath(tmp_path, servers):
    """gunicorn's order: --pythonpath entries (last first), the --chdir
    directory, the launch directory; a logconfig_dict formatter from the
    project resolves."""
    launch = tmp_path / "launch"
    (launch / "launchpkg").mkdir(parents=True)
    (launch / "launchpkg" / "__init__.py").write_text("WORKERS = 1\n")
    (launch / "launch_sibling.py").write_text("WHERE = 'launch'\n")
    (launch / "fmt.py").write_text(
        "import logging\nclass Tagged(logging.Formatter):\n"
        "    def format(self, record):\n        return 'TAGGED ' + record.getMessage()\n")
    (launch / "gunicorn.conf.py").write_text(
        "import launch_sibling\nfrom launchpkg import WORKERS\nworkers = WORKERS\n"
        "chdir = %r\npythonpath = 'one,two'\n"
        "logconfig_dict = {'version': 1, 'formatters': {'t': {'()': 'fmt.Tagged'}},\n"
        "    'root': {'level': 'WARNING', 'handlers': ['h']},\n"
        "    'handlers': {'h': {'class': 'logging.StreamHandler', 'formatter': 't'}},\n"
        "    'loggers': {'gunicorn.error': {'handlers': ['h'], 'level': 'INFO', 'propagate': False}}}\n"
        % str(tmp_path / "project"))
    project = tmp_path / "project"
    for d in ("one", "two"):
        (project / d).mkdir(parents=True)
        (project / d / "which.py").write_text("WHERE = %r\n" % d)
    (project / "pathapp.py").write_text(
        "import json, sys, which, launch_sibling\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    top = [p for p in sys.path if p.startswith(%r)][:4]\n"
        "    return [json.dumps({'which': which.WHERE, 'sibling': launch_sibling.WHERE, 'path': top}).encode()]\n"
        % str(tmp_path))
    env = corpus_env(tmp_path, PWD=str(launch))
    port = conftest.free_port()
    proc = subprocess.Popen([conftest.server_executable(), "pathapp:app", "-b", "127.0.0.1:%d" % port],
                            cwd=str(launch), env=env, stdout=open(tmp_path / "log", "wb"),
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    srv = conftest.Server(proc, port, str(tmp_path / "log"))
    servers.append(srv)
    assert conftest.wait_for_tcp("127.0.0.1", port, proc), srv.log()
    info = body_json(get(srv, "/"))
    assert info["which"] == "two"
    assert info["sibling"] == "launch"
    assert info["path"] == [str(project / "two"), str(project / "one"), str(project), str(launch)]
    assert wait_log(srv, "TAGGED Booting worker")


def test_config_imports_fail_with_one_line_naming_the_module(tmp_path):
    conf = tmp_path / "broken.conf.py"
    conf.write_text("import no_such_project_module\n")
    res = run(conftest.server_executable(), "corpus_app:app", "-c", str(conf), env=corpus_env(tmp_path))
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1, res.stderr
    assert "No module named 'no_such_project_module'" in res.stderr


# -- --print-config fidelity ------------------------------------------------------

@pytest.mark.parametrize("xdg", [True, False])
def test_control_socket_default_follows_xdg_runtime_dir(tmp_path, xdg):
    extra = {"XDG_RUNTIME_DIR": str(tmp_path)} if xdg else {}
    args = ["corpus_app:app", "--print-config"]
    theirs = run(gunicorn_executable(), *args, env=corpus_env(tmp_path, **extra))
    ours = run(conftest.server_executable(), *args, env=corpus_env(tmp_path, **extra))
    line = [l for l in printed(ours) if l.startswith("control_socket ")]
    assert line == [l for l in printed(theirs) if l.startswith("control_socket ")]
    expected = str(tmp_path / "gunicorn.ctl") if xdg else os.path.expanduser("~/.gunicorn/gunicorn.ctl")
    assert line[0].endswith("= " + expected)
