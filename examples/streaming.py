"""A generator app: the body is produced chunk by chunk, with no Content-Length,
so an HTTP/1.1 client receives it chunked.

    rsgi examples.streaming:app

``/?n=5&delay=0.2`` streams five lines, pausing between them.
"""

import time
from urllib.parse import parse_qs


def app(environ, start_response):
    query = parse_qs(environ.get("QUERY_STRING", ""))
    count = int(query.get("n", ["10"])[0])
    delay = float(query.get("delay", ["0"])[0])
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return _lines(count, delay)


def _lines(count, delay):
    for i in range(count):
        if delay and i:
            time.sleep(delay)
        yield f"line {i}\n".encode()
