"""Apps for the listener suite.

    listen_apps:app   JSON: SERVER_NAME, SERVER_PORT, REMOTE_ADDR, and the
                      LISTEN_* variables and the masters' notes to each other
                      (RSGI_SYSTEMD_FDS, RSGI_FD, GUNICORN_FD, RSGI_MASTER_PID)
                      the worker's os.environ still holds and a subprocess it
                      starts inherits (none of them must reach the app)
"""

import json
import os
import subprocess

MASTER_NOTES = ("LISTEN_", "RSGI_SYSTEMD_FDS", "RSGI_FD", "GUNICORN_FD", "RSGI_MASTER_PID")


def _child_env():
    """The notes a subprocess of the app inherits (the process's C
    environment, which os.environ need not mirror)."""
    out = subprocess.run(["env", "-0"], capture_output=True, timeout=10, check=True).stdout
    pairs = (item.split(b"=", 1) for item in out.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode() for k, v in pairs if k.decode().startswith(MASTER_NOTES)}


def app(environ, start_response):
    body = json.dumps({
        "server_name": environ.get("SERVER_NAME"),
        "server_port": environ.get("SERVER_PORT"),
        "remote_addr": environ.get("REMOTE_ADDR"),
        "listen_env": {k: v for k, v in os.environ.items() if k.startswith(MASTER_NOTES)},
        "child_env": _child_env(),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
