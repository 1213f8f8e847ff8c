"""--log-syslog: error and access lines framed as Python's SysLogHandler
frames gunicorn's (`<PRI>gunicorn.PREFIX.error: [PID] message`), received by
a UDP socket on 127.0.0.1."""

import socket
import time

import pytest

from _rawhttp import get
from conftest import SERVER_KIND


@pytest.mark.timeout(60)
@pytest.mark.parametrize("redirect_access", [True, False])
def test_syslog_receives_error_and_access_lines(start_server, redirect_access):
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(0.5)
    port = sink.getsockname()[1]
    args = ["--log-syslog", "--log-syslog-to", "udp://127.0.0.1:%d" % port,
            "--log-syslog-prefix", "demo", "--log-syslog-facility", "local0"]
    if not redirect_access:
        args.append("--disable-redirect-access-to-syslog")
    try:
        srv = start_server("basic:app", *args)
        assert get(srv, "/from-syslog-test").status == 200
        lines = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                lines.append(sink.recv(4096).decode())
            except socket.timeout:
                if any("Booting worker" in l for l in lines) and (
                        not redirect_access or any("/from-syslog-test" in l for l in lines)):
                    break
        # local0 (16) * 8 + info (6) = 134
        boot = [l for l in lines if "Booting worker" in l]
        assert boot and boot[0].startswith("<134>gunicorn.demo.error: ["), lines
        assert boot[0].endswith("\0")
        access = [l for l in lines if "/from-syslog-test" in l]
        if redirect_access:
            assert access and access[0].startswith("<134>gunicorn.demo.access: ["), lines
        else:
            assert not access, lines
    finally:
        sink.close()
