"""Apps for tests/test_tls.py.

    tls_apps:app    /            JSON: wsgi.url_scheme, SSL_CLIENT_CERT, pid
                    /echo        the request body back (POST)
                    /big         1 MiB from a list of bytes
                    /file        1 MiB through wsgi.file_wrapper (a real file)
"""

import json
import os
import tempfile

BIG = bytes(range(256)) * 4096
_FILE = tempfile.NamedTemporaryFile(prefix="rsgi-tls-app-", delete=False)
_FILE.write(BIG)
_FILE.close()


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/echo":
        body = environ["wsgi.input"].read()
    elif path == "/big":
        body = BIG
    elif path == "/file":
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(BIG)))])
        return environ["wsgi.file_wrapper"](open(_FILE.name, "rb"), 65536)
    else:
        body = json.dumps({
            "scheme": environ["wsgi.url_scheme"],
            "client_cert": environ.get("SSL_CLIENT_CERT"),
            "pid": os.getpid(),
        }).encode()
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
    return [body]
