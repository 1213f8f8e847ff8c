"""Apps for the listener suite.

    listen_apps:app   JSON: SERVER_NAME, SERVER_PORT, REMOTE_ADDR, and the
                      LISTEN_* variables the worker's process environment
                      still holds (systemd's must not reach the app)
"""

import json
import os


def app(environ, start_response):
    body = json.dumps({
        "server_name": environ.get("SERVER_NAME"),
        "server_port": environ.get("SERVER_PORT"),
        "remote_addr": environ.get("REMOTE_ADDR"),
        "listen_env": {k: v for k, v in os.environ.items() if k.startswith("LISTEN_")},
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
