"""``gunicorn.http.wsgi``: the names configuration files change to alter
the ``Server`` header (``SERVER``, ``SERVER_SOFTWARE``); rsgi reads them
once the configuration has run. ``Response`` is here for files that
subclass it; rsgi writes its responses in Rust and does not use it."""

from gunicorn import SERVER, SERVER_SOFTWARE  # noqa: F401  (names configs rebind)


class Response:
    def __init__(self, req, sock, cfg):
        self.req = req
        self.sock = sock
        self.version = SERVER
        self.status = None
        self.headers = []
        self.cfg = cfg

    def default_headers(self):
        return ["Server: %s\r\n" % self.version]
