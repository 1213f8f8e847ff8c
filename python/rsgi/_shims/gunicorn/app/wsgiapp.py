"""``gunicorn.app.wsgiapp``: scripts that start gunicorn's command line
from Python (``run()``) start rsgi's."""

from gunicorn.app.base import Application


class WSGIApplication(Application):
    pass


def run(prog=None):
    WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]", prog=prog).run()
