"""A WSGI app with a fast and a slow endpoint, for the isolation scenario.

``/slow`` sleeps (``?s=SECONDS``, default 1) before answering; every other
path answers at once.
"""

import time
from urllib.parse import parse_qs


def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        qs = parse_qs(environ.get("QUERY_STRING", ""))
        time.sleep(float(qs.get("s", ["1"])[0]))
        body = b"slow\n"
    else:
        body = b"fast\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
