"""An I/O-bound app for the gevent scenario: each request waits 50 ms (as a
database or upstream call would), then answers the 13-byte hello. Under a
gevent worker the sleep is patched and yields to other greenlets."""

import time

HELLO = b"Hello, World!"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))]


def app(environ, start_response):
    time.sleep(0.05)
    start_response("200 OK", list(HEADERS))
    return [HELLO]
