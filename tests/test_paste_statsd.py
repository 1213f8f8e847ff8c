"""--paste (a PasteDeploy .ini app, loaded with PasteDeploy itself) and
statsd metrics with gunicorn's names, received by a UDP socket on 127.0.0.1."""

import socket
import time
from pathlib import Path

import pytest

from _rawhttp import get
from conftest import APPS

PASTE_DIR = APPS / "paste"


@pytest.mark.timeout(60)
def test_paste_app_with_global_conf(start_server):
    srv = start_server("--paste=site.ini", "--paste-global", "extra=yes", cwd=PASTE_DIR)
    resp = get(srv, "/")
    assert resp.status == 200
    assert resp.body == b"from-main/yes"


@pytest.mark.timeout(60)
def test_paste_named_app(start_server):
    srv = start_server("--paste=site.ini#other", cwd=PASTE_DIR)
    assert get(srv, "/").body == b"from-other/-"


@pytest.mark.timeout(60)
def test_paste_missing_file_is_one_clear_line(start_server):
    with pytest.raises(RuntimeError) as info:
        start_server("--paste=nope.ini", cwd=PASTE_DIR)
    assert "nope.ini" in str(info.value)


@pytest.mark.timeout(60)
def test_statsd_metrics_use_gunicorns_names(start_server):
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(0.5)
    port = sink.getsockname()[1]
    try:
        srv = start_server("basic:app", "--statsd-host", "127.0.0.1:%d" % port,
                           "--statsd-prefix", "myapp", "--dogstatsd-tags", "env:test")
        assert get(srv, "/").status == 200
        seen = set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not {"requests", "status", "duration", "workers"} <= seen:
            try:
                msg = sink.recv(2048).decode()
            except socket.timeout:
                continue
            assert msg.startswith("myapp.gunicorn."), msg
            assert msg.endswith("|#env:test"), msg
            if msg.startswith("myapp.gunicorn.requests:1|c"):
                seen.add("requests")
            elif msg.startswith("myapp.gunicorn.request.status.200:1|c"):
                seen.add("status")
            elif msg.startswith("myapp.gunicorn.request.duration:") and "|ms" in msg:
                seen.add("duration")
            elif msg.startswith("myapp.gunicorn.workers:1|g"):
                seen.add("workers")
        assert seen == {"requests", "status", "duration", "workers"}
    finally:
        sink.close()
