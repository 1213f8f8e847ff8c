"""whitenoise in front of a tiny WSGI app, for bench/static.py: the files
under $STATIC_DIR at /static/, served by whitenoise's Python code inside
whatever WSGI server runs this module."""

import os

from whitenoise import WhiteNoise


def _fallback(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"not found"]


app = WhiteNoise(_fallback, root=os.environ["STATIC_DIR"], prefix="/static/", max_age=60)
