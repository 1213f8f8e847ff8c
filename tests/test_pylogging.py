"""logconfig_dict / --log-config-json / --log-config: error lines go to the
`gunicorn.error` logger and access lines to `gunicorn.access`, configured
through Python's logging as gunicorn does."""

import json
import time

import pytest

import conftest

from _rawhttp import get


def _dict_config(err, acc):
    return {
        "version": 1,
        "root": {"level": "WARNING", "handlers": ["err"]},
        "handlers": {
            "err": {"class": "logging.FileHandler", "filename": str(err), "formatter": "plain"},
            "acc": {"class": "logging.FileHandler", "filename": str(acc), "formatter": "plain"},
        },
        "formatters": {"plain": {"format": "PY %(name)s %(levelname)s %(message)s"}},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["err"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["acc"], "propagate": False},
        },
    }


def _wait_for(path, text, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return True
        time.sleep(0.1)
    return False


def _check(srv, err, acc):
    assert get(srv, "/logged-path").status == 200
    assert _wait_for(err, "PY gunicorn.error INFO Booting worker with pid:")
    assert _wait_for(acc, 'PY gunicorn.access INFO 127.0.0.1 - - [')
    assert '"GET /logged-path HTTP/1.1" 200' in acc.read_text()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", conftest.WORKER_KINDS)
def test_logconfig_dict(start_server, tmp_path, kind):
    # Under gevent the worker's lines reach Python logging from rsgi's
    # forwarder thread, an OS thread in a patched process.
    err, acc = tmp_path / "err.log", tmp_path / "acc.log"
    conf = tmp_path / "conf.py"
    conf.write_text("logconfig_dict = %r\n" % _dict_config(err, acc))
    srv = start_server("basic:app", "-c", str(conf), *conftest.kind_args(kind))
    _check(srv, err, acc)


@pytest.mark.timeout(60)
def test_logconfig_json(start_server, tmp_path):
    err, acc = tmp_path / "err.log", tmp_path / "acc.log"
    conf = tmp_path / "log.json"
    conf.write_text(json.dumps(_dict_config(err, acc)))
    srv = start_server("basic:app", "--log-config-json", str(conf))
    _check(srv, err, acc)


@pytest.mark.timeout(60)
def test_logconfig_ini(start_server, tmp_path):
    err, acc = tmp_path / "err.log", tmp_path / "acc.log"
    ini = tmp_path / "log.ini"
    ini.write_text(f"""[loggers]
keys=root,error,access

[handlers]
keys=err,acc

[formatters]
keys=plain

[logger_root]
level=WARNING
handlers=err

[logger_error]
level=INFO
handlers=err
propagate=0
qualname=gunicorn.error

[logger_access]
level=INFO
handlers=acc
propagate=0
qualname=gunicorn.access

[handler_err]
class=FileHandler
formatter=plain
args=('{err}',)

[handler_acc]
class=FileHandler
formatter=plain
args=('{acc}',)

[formatter_plain]
format=PY %(name)s %(levelname)s %(message)s
""")
    srv = start_server("basic:app", "--log-config", str(ini))
    _check(srv, err, acc)


@pytest.mark.timeout(60)
def test_bad_logconfig_is_one_line(tmp_path):
    import subprocess
    from conftest import server_executable, APPS
    conf = tmp_path / "conf.py"
    conf.write_text("logconfig_dict = {'handlers': {}, 'root': {'handlers': ['missing']}}\n")
    res = subprocess.run([server_executable(), "basic:app", "-c", str(conf), "-b", "127.0.0.1:0"],
                         cwd=str(APPS), capture_output=True, text=True, timeout=30)
    assert res.returncode != 0
    assert res.stderr.strip().count("\n") == 0, res.stderr
