"""Configuration as gunicorn reads it: the sources and their precedence
(command line > RSGI_CMD_ARGS > GUNICORN_CMD_ARGS > config file > defaults),
config files (-c FILE, -c python:module, ./gunicorn.conf.py, ./rsgi.conf.py,
wsgi_app), bad configurations, settings rsgi cannot honour, --print-config
compared line by line with the installed gunicorn's, --check-config,
--preload, -e/raw_env and -k.

Config files and apps live in tests/apps/config/, which is also the working
directory of the servers started here.  Under RSGI_TEST_SERVER=gunicorn the
rsgi-only parts (RSGI_CMD_ARGS, rsgi.conf.py, warnings and refusals for
settings gunicorn honours, --limit-request-body) are skipped or branched.
"""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import conftest
from _rawhttp import get, wait_for
from test_master import booted_pids, log_records, wait_booted
from test_signals import children, wait_worker_count

GUNICORN = conftest.SERVER_KIND == "gunicorn"
NAME = "gunicorn" if GUNICORN else "rsgi"
CONFIG = conftest.APPS / "config"
rsgi_only = pytest.mark.skipif(GUNICORN, reason="rsgi's own behaviour")

# `name = value` lines of --print-config.
SETTING_LINE = re.compile(r"^([a-z_0-9]+)\s+= (.*)$")

# Lines where rsgi's --print-config deliberately differs from gunicorn 27's,
# as {setting: reason}.  Empty: rsgi prints every gunicorn setting exactly as
# gunicorn does, and leaves its own settings (max_worker_memory,
# limit_request_body) out of the listing.
PRINT_CONFIG_DIFFERENCES = {}


def gunicorn_executable():
    path = Path(sys.executable).parent / "gunicorn"
    if not path.exists():
        pytest.skip("gunicorn is not installed next to %s" % sys.executable)
    return str(path)


def clean_env(**extra):
    env = dict(os.environ)
    for key in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "RSGI_CMD_ARGS", "FORWARDED_ALLOW_IPS"):
        env.pop(key, None)
    env["PYTHONPATH"] = str(CONFIG)  # gunicorn --print-config imports the app
    env.update(extra)
    return env


def run(executable, *args, cwd=CONFIG, env=None, timeout=60):
    """Run a CLI that is expected to exit by itself."""
    return subprocess.run([executable, *args], cwd=str(cwd), env=env or clean_env(),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)


def run_server_cli(*args, **kwargs):
    return run(conftest.server_executable(), *args, **kwargs)


def print_config(executable, *args, **kwargs):
    """{setting: printed value} from ``executable ARGS --print-config``."""
    res = run(executable, *args, "--print-config", **kwargs)
    assert res.returncode == 0, (args, res.stdout, res.stderr)
    settings = {}
    for line in res.stdout.splitlines():
        m = SETTING_LINE.match(line)
        if m:
            settings[m.group(1)] = m.group(2)
    assert settings, res.stdout
    return settings, res


def server_config(*args, **kwargs):
    return print_config(conftest.server_executable(), *args, **kwargs)[0]


def assert_same_print_config(*args, **kwargs):
    """The server under test prints exactly gunicorn's lines for ``args``."""
    theirs, g_res = print_config(gunicorn_executable(), *args, **kwargs)
    ours, o_res = print_config(conftest.server_executable(), *args, **kwargs)
    g_lines = [l for l in g_res.stdout.splitlines() if SETTING_LINE.match(l)]
    o_lines = [l for l in o_res.stdout.splitlines() if SETTING_LINE.match(l)]
    different = []
    for name in sorted(set(theirs) | set(ours)):
        if name in PRINT_CONFIG_DIFFERENCES:
            continue
        if theirs.get(name) != ours.get(name):
            different.append("%s: gunicorn %r, %s %r" % (name, theirs.get(name), NAME,
                                                         ours.get(name)))
    assert not different, "\n".join(different)
    if not PRINT_CONFIG_DIFFERENCES:
        # Same lines, same order, same column alignment.
        assert o_lines == g_lines


def free_bind():
    """A free loopback address, in case a bad configuration still starts."""
    return "127.0.0.1:%d" % conftest.free_port()


def app_json(server, query=""):
    resp = get(server, "/?" + query)
    assert resp.status == 200, resp
    return json.loads(resp.body)


def log_messages(server):
    return [msg for _, _, msg in log_records(server)]


# -- every gunicorn setting is known -------------------------------------------

def test_every_gunicorn_setting_is_printed():
    gconfig = pytest.importorskip("gunicorn.config")
    known = {s.name for s in gconfig.KNOWN_SETTINGS}
    printed = server_config("cfgapp:app")
    missing = sorted(known - set(printed))
    version = sys.modules["gunicorn"].__version__
    assert not missing, "settings of gunicorn %s unknown to %s: %s" % (version, NAME, missing)


def test_every_gunicorn_command_line_flag_is_listed_in_help():
    gconfig = pytest.importorskip("gunicorn.config")
    res = run_server_cli("--help")
    assert res.returncode == 0, res.stderr
    flags = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", res.stdout))
    missing = ["%s (%s)" % (flag, s.name) for s in gconfig.KNOWN_SETTINGS
               for flag in (s.cli or []) if flag not in flags]
    assert not missing, missing


# -- --print-config: the same lines as gunicorn --------------------------------

def test_print_config_matches_gunicorn_for_a_config_file_setting_many_values():
    assert_same_print_config("cfgapp:routes", "-c", "many_settings.conf.py")


def test_print_config_matches_gunicorn_for_command_line_flags():
    assert_same_print_config(
        "cfgapp:routes",
        "-b", "127.0.0.1:9001", "-b", "unix:/tmp/rsgi-print-config.sock",
        "-w", "2", "-k", "gthread", "--threads", "3", "-t", "4", "--graceful-timeout", "3",
        "--keep-alive", "3", "--backlog", "5", "--worker-connections", "10",
        "--max-requests", "5", "--max-requests-jitter", "3",
        "--limit-request-line", "0", "--limit-request-fields", "7",
        "--limit-request-field_size", "99",
        "-e", "A=1", "-e", "B=2=3", "-n", "cli-name", "--umask", "0o027",
        "--forwarded-allow-ips", "*", "--proxy-protocol", "--proxy-allow-from", "*",
        "--forwarder-headers", "SCRIPT_NAME", "--header-map", "dangerous",
        "--access-logfile", "-", "--access-logformat", "%(h)s %(r)s",
        "--error-logfile", "-", "--log-level", "warning", "--capture-output",
        "--preload", "--no-sendfile", "--reuse-port", "--worker-tmp-dir", "/tmp",
        "--pythonpath", "/x", "--root-path", "/r", "--paste-global", "a=b",
        "--dogstatsd-tags", "x:y", "--statsd-prefix", "pre",
        "--log-syslog-to", "unix:///dev/log", "--log-syslog-prefix", "pp",
        "--log-syslog-facility", "local0", "--casefold-http-method",
        "--permit-unconventional-http-version", "--strip-header-spaces",
        "--permit-obsolete-folding", "--initgroups", "-R", "--enable-backlog-metric",
        "--http2-max-frame-size", "20000")


@pytest.mark.parametrize("flags", [
    ["--statsd-host", "localhost:9125"],
    ["--no-sendfile"],
    ["-u", str(os.getuid()), "-g", str(os.getgid())],
    ["--threads", "2"],
], ids=["statsd-host", "no-sendfile", "numeric-user-group", "threads"])
def test_print_config_matches_gunicorn_for_typed_flags(flags):
    assert_same_print_config("cfgapp:routes", *flags)


@pytest.mark.parametrize("source", [
    "user = %d\ngroup = %d\n" % (os.getuid(), os.getgid()),
    "proxy_protocol = True\n",
    "proxy_protocol = False\n",
    "statsd_host = 'localhost:9125'\n",
    "workers = '3'\ntimeout = '31'\nbind = '127.0.0.1:5000'\numask = '0o22'\n",
    "raw_env = 'X=1'\nsecure_scheme_headers = {}\n",
    "import ssl\nssl_version = ssl.PROTOCOL_TLS_CLIENT\n",
], ids=["int-uid-gid", "proxy_protocol-True", "proxy_protocol-False", "statsd_host",
        "strings-for-ints", "string-raw_env", "ssl_version-enum"])
def test_print_config_matches_gunicorn_for_python_typed_values(tmp_path, source):
    """Values real config files hold: ints for ids, bools, strings for ints."""
    conf = tmp_path / "typed.conf.py"
    conf.write_text(source)
    assert_same_print_config("cfgapp:routes", "-c", str(conf))


def test_print_config_matches_gunicorn_with_wsgi_app_from_the_file():
    assert_same_print_config("-c", "wsgi_app.conf.py")


def test_print_config_exits_1_when_the_app_cannot_be_loaded():
    """gunicorn loads the app after printing, and fails like --check-config."""
    res = run_server_cli("no_such_module_here:app", "--print-config")
    assert res.returncode == 1, (res.stdout[-300:], res.stderr)
    assert "no_such_module_here" in res.stderr


# -- --check-config ------------------------------------------------------------

def test_check_config_loads_the_app_and_exits_0():
    res = run_server_cli("cfgapp:app", "--check-config")
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("app,named", [
    ("no_such_module_here:app", "no_such_module_here"),
    ("cfgapp:no_such_attribute", "no_such_attribute"),
])
def test_check_config_exits_1_when_the_app_cannot_be_loaded(app, named):
    res = run_server_cli(app, "--check-config")
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert named in res.stderr


def test_check_config_with_a_bad_config_file_exits_1():
    res = run_server_cli("cfgapp:app", "-c", "bad_workers.conf.py", "--check-config")
    assert res.returncode == 1


# -- precedence ----------------------------------------------------------------

def test_precedence_cli_over_env_over_file_over_defaults():
    env = clean_env(GUNICORN_CMD_ARGS="--threads 4 --timeout 44 --keep-alive 4 --max-requests 444",
                    RSGI_CMD_ARGS="--timeout 55 --keep-alive 5")
    cfg = server_config("cfgapp:app", "-c", "precedence.conf.py", "--keep-alive", "6", env=env)
    assert cfg["workers"] == "3"             # file
    assert cfg["graceful_timeout"] == "33"   # file
    assert cfg["proc_name"] == "from-file"   # file
    assert cfg["threads"] == "4"             # GUNICORN_CMD_ARGS over file
    assert cfg["max_requests"] == "444"      # GUNICORN_CMD_ARGS over file
    assert cfg["keepalive"] == "6"           # command line over everything
    assert cfg["backlog"] == "2048"          # default
    # RSGI_CMD_ARGS wins over GUNICORN_CMD_ARGS; gunicorn does not read it.
    assert cfg["timeout"] == ("44" if GUNICORN else "55")


def test_web_concurrency_is_the_default_worker_count():
    assert server_config("cfgapp:app", env=clean_env(WEB_CONCURRENCY="3"))["workers"] == "3"
    cfg = server_config("cfgapp:app", "-c", "precedence.conf.py",
                        env=clean_env(WEB_CONCURRENCY="5"))
    assert cfg["workers"] == "3"  # the file wins over the default


def test_config_file_is_named_in_gunicorn_cmd_args():
    env = clean_env(GUNICORN_CMD_ARGS="-c precedence.conf.py")
    cfg = server_config("cfgapp:app", env=env)
    assert cfg["config"] == "precedence.conf.py"
    assert cfg["proc_name"] == "from-file"


@rsgi_only
def test_config_file_is_named_in_rsgi_cmd_args():
    env = clean_env(RSGI_CMD_ARGS="-c precedence.conf.py")
    cfg = server_config("cfgapp:app", env=env)
    assert cfg["proc_name"] == "from-file"


def test_precedence_applies_to_the_running_server(start_server):
    srv = start_server("cfgapp:app", "-c", "precedence.conf.py", "--graceful-timeout", "5",
                       cwd=CONFIG, env={"GUNICORN_CMD_ARGS": "-w 2"})
    assert wait_booted(srv, 2)
    assert wait_worker_count(srv.pid, 2)
    assert len(booted_pids(srv)) == 2
    assert app_json(srv)["pid"] in children(srv.pid)


# -- which config file ---------------------------------------------------------

@pytest.mark.parametrize("directory,expected", [
    ("default_gunicorn", "from-gunicorn-conf"),
    ("default_rsgi", None if GUNICORN else "from-rsgi-conf"),
    ("default_both", "from-gunicorn-conf"),
])
def test_default_config_file_in_the_current_directory(directory, expected):
    cfg = server_config("cfgapp:app", cwd=CONFIG / directory)
    assert cfg["proc_name"] == str(expected)


def test_explicit_config_file_replaces_the_default_one():
    cfg = server_config("cfgapp:app", "-c", str(CONFIG / "precedence.conf.py"),
                        cwd=CONFIG / "default_both")
    assert cfg["proc_name"] == "from-file"


def test_config_from_a_python_module_in_the_current_directory():
    cfg = server_config("cfgapp:app", "-c", "python:pyconf_module",
                        env=clean_env(PYTHONPATH=""))
    assert cfg["config"] == "python:pyconf_module"
    assert cfg["proc_name"] == "from-python-module"
    assert cfg["workers"] == "2"


def test_config_file_with_the_file_prefix():
    cfg = server_config("cfgapp:app", "-c", "file:precedence.conf.py")
    assert cfg["proc_name"] == "from-file"


def test_wsgi_app_from_the_config_file_serves_without_an_app_argument(start_server):
    # conftest.spawn puts its first argument right after the executable: here
    # the --config option takes the place of the APP argument.
    srv = start_server("--config=wsgi_app.conf.py", cwd=CONFIG)
    resp = get(srv, "/")
    assert resp.status == 200
    assert resp.body == b"from-wsgi-app-setting"


def test_app_argument_wins_over_wsgi_app(start_server):
    srv = start_server("cfgapp:make_app('from-cli')", "-c", "wsgi_app.conf.py", cwd=CONFIG)
    assert get(srv, "/").body == b"from-cli"


# -- bad configurations --------------------------------------------------------

def _assert_one_clear_line(res, *words):
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert lines, res
    if not GUNICORN:  # gunicorn adds a traceback or blank lines
        assert len(lines) == 1, res.stderr
    for word in words:
        assert word in res.stderr, res.stderr


def test_config_file_that_raises_exits_1_with_one_line():
    res = run_server_cli("cfgapp:app", "-c", "raises.conf.py", "-b", free_bind())
    assert res.returncode == 1
    _assert_one_clear_line(res, "raises.conf.py", "config exploded on purpose")


def test_bad_value_in_config_file_exits_1_with_one_line():
    res = run_server_cli("cfgapp:app", "-c", "bad_workers.conf.py", "-b", free_bind())
    assert res.returncode == 1
    _assert_one_clear_line(res, "workers", "x")


@pytest.mark.skipif(GUNICORN, reason="gunicorn has no cap on --threads")
def test_threads_beyond_what_the_scoreboard_tracks_exit_1_with_one_line():
    # Executors past the scoreboard's size would escape --timeout.
    res = run_server_cli("cfgapp:app", "--threads", "257", "-b", free_bind())
    assert res.returncode == 1
    _assert_one_clear_line(res, "threads", "257", "at most 256")


def test_bad_value_on_the_command_line_exits_non_zero():
    res = run_server_cli("cfgapp:app", "-w", "lots")
    assert res.returncode != 0
    assert "lots" in res.stderr


def test_bad_value_in_gunicorn_cmd_args_exits_non_zero():
    res = run_server_cli("cfgapp:app", "--check-config",
                         env=clean_env(GUNICORN_CMD_ARGS="--timeout soon"))
    assert res.returncode != 0
    assert "soon" in res.stderr


def test_missing_config_file_exits_1():
    res = run_server_cli("cfgapp:app", "-c", "no-such-file.conf.py")
    assert res.returncode == 1
    _assert_one_clear_line(res, "no-such-file.conf.py")


def test_unknown_command_line_option_exits_2():
    res = run_server_cli("cfgapp:app", "--no-such-option")
    assert res.returncode == 2
    assert "--no-such-option" in res.stderr


def test_unknown_names_in_the_config_file_are_ignored():
    cfg = server_config("-c", "wsgi_app.conf.py")
    assert "not_a_setting" not in cfg
    assert "helper" not in cfg
    assert cfg["wsgi_app"] == "cfgapp:make_app('from-wsgi-app-setting')"


# -- settings rsgi cannot honour -----------------------------------------------

@rsgi_only
@pytest.mark.parametrize("how", ["file", "cli"])
def test_reload_is_on_with_one_warning(start_server, how):
    # --reload works (tests/test_reload.py); turning it on warns once that
    # it is meant for development.
    args = ["-c", "reload.conf.py"] if how == "file" else ["--reload"]
    srv = start_server("cfgapp:app", *args, cwd=CONFIG)
    assert get(srv, "/").status == 200
    assert wait_booted(srv, 1)
    warnings = [(lvl, msg) for _, lvl, msg in log_records(srv) if "reload" in msg]
    assert len(warnings) == 1, srv.log()
    level, message = warnings[0]
    assert level == "WARNING"
    assert message.startswith("--reload is on: "), message


@rsgi_only
@pytest.mark.parametrize("args,setting", [
    (["--certfile", "cert.pem"], "certfile"),
    (["--keyfile", "key.pem"], "keyfile"),
    (["--logger-class", "mypackage.MyLogger"], "logger_class"),
    (["--protocol", "uwsgi"], "protocol"),
    (["--http-protocols", "h2"], "http_protocols"),
])
def test_settings_rsgi_cannot_honour_are_refused_with_one_line(args, setting):
    res = run_server_cli("cfgapp:app", "-b", free_bind(), *args, timeout=30)
    assert res.returncode != 0
    _assert_one_clear_line(res, setting)
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_worker_classes_sync_and_gthread_serve(start_server, worker_class):
    srv = start_server("cfgapp:app", "-k", worker_class, cwd=CONFIG)
    assert app_json(srv)["pid"] in booted_pids(srv)
    assert "Using worker: %s" % worker_class in log_messages(srv)


def test_sync_with_threads_is_gthread(start_server):
    srv = start_server("cfgapp:app", "-k", "sync", "--threads", "2", cwd=CONFIG)
    assert get(srv, "/").status == 200
    assert "Using worker: gthread" in log_messages(srv)


def test_limit_request_body_is_rsgis_own():
    res = run_server_cli("cfgapp:app", "--limit-request-body", "10", "--check-config")
    if GUNICORN:
        assert res.returncode == 2  # not a gunicorn option
    else:
        assert res.returncode == 0, res.stderr


@rsgi_only
def test_limit_request_body_answers_413(start_server):
    srv = start_server("cfgapp:app", "--limit-request-body", "10", cwd=CONFIG)
    assert get(srv, "/", method="POST", body=b"x" * 10).status == 200
    assert get(srv, "/", method="POST", body=b"x" * 11).status == 413


# -- --preload, raw_env ----------------------------------------------------------

@pytest.mark.parametrize("preload", [True, False])
def test_preload_imports_the_app_in_the_master(start_server, preload):
    srv = start_server("cfgapp:app", *(["--preload"] if preload else []), cwd=CONFIG)
    info = app_json(srv)
    assert info["pid"] != srv.pid
    assert info["import_pid"] == (srv.pid if preload else info["pid"])


def test_env_option_sets_the_apps_environment(start_server):
    srv = start_server("cfgapp:app", "-e", "RSGI_T_ONE=1", "--env", "RSGI_T_TWO=x=y",
                       "-e", "RSGI_T_EMPTY=", cwd=CONFIG)
    env = app_json(srv, "RSGI_T_ONE,RSGI_T_TWO,RSGI_T_EMPTY")["env"]
    assert env == {"RSGI_T_ONE": "1", "RSGI_T_TWO": "x=y", "RSGI_T_EMPTY": ""}


def test_raw_env_in_the_config_file_sets_the_apps_environment(start_server):
    srv = start_server("cfgapp:app", "-c", "raw_env.conf.py", cwd=CONFIG)
    env = app_json(srv, "FROM_FILE,SECOND")["env"]
    assert env == {"FROM_FILE": "file value", "SECOND": "a=b"}


def test_env_on_the_command_line_replaces_raw_env_of_the_file(start_server):
    """A list setting is replaced, not merged, as gunicorn does."""
    srv = start_server("cfgapp:app", "-c", "raw_env.conf.py", "-e", "FROM_CLI=yes", cwd=CONFIG)
    env = app_json(srv, "FROM_FILE,FROM_CLI")["env"]
    assert env == {"FROM_FILE": None, "FROM_CLI": "yes"}


# -- HUP re-reads the configuration ----------------------------------------------

def test_hup_rereads_the_config_file(start_server, tmp_path):
    conf = tmp_path / "live.conf.py"
    conf.write_text("workers = 1\n")
    srv = start_server("cfgapp:app", "-c", str(conf), "--graceful-timeout", "5", cwd=CONFIG)
    assert wait_booted(srv, 1)
    assert wait_worker_count(srv.pid, 1)
    conf.write_text("workers = 3\n")
    srv.proc.send_signal(signal.SIGHUP)
    assert wait_worker_count(srv.pid, 3), srv.log()
    assert wait_for(lambda: get(srv, "/").status == 200)


@pytest.mark.skipif(GUNICORN, reason="checks rsgi's master process directly")
def test_hup_with_a_config_whose_python_part_fails_keeps_the_old_one(start_server, tmp_path):
    # The new file is valid Python with valid values, but applying it to the
    # interpreter fails after its chdir: the master must log that error,
    # go back to its directory and keep serving with the old configuration.
    conf = tmp_path / "live.conf.py"
    conf.write_text("workers = 1\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    srv = start_server("cfgapp:app", "-c", str(conf), "--graceful-timeout", "5", cwd=CONFIG)
    assert wait_booted(srv, 1)
    assert wait_worker_count(srv.pid, 1)
    before = os.readlink("/proc/%d/cwd" % srv.pid)
    conf.write_text("workers = 3\nchdir = %r\nraw_env = ['BAD\\x00NAME=1']\n" % str(elsewhere))
    srv.proc.send_signal(signal.SIGHUP)
    failed = wait_for(lambda: [m for m in log_messages(srv) if "Reload failed" in m])
    assert failed, srv.log()
    assert "BAD" in failed[0] and "null" in failed[0], failed
    assert os.readlink("/proc/%d/cwd" % srv.pid) == before
    assert get(srv, "/").status == 200
    assert wait_worker_count(srv.pid, 1)
