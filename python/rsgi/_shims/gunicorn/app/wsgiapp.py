"""``gunicorn.app.wsgiapp``: scripts that start gunicorn's command line
from Python (``run()``) start rsgi's; subclasses that set ``app_uri`` and
fill ``self.cfg`` start rsgi on that app with those settings."""

import sys

from gunicorn import util
from gunicorn.app.base import Application


class WSGIApplication(Application):
    app_uri = None

    def load(self):
        if self.app_uri is None:
            raise RuntimeError("No application module specified.")
        return util.import_app(self.app_uri)

    def runs_command_line(self):
        kind = type(self)
        return (self.app_uri is None and kind.init is Application.init
                and kind.load_config is Application.load_config and kind.load is WSGIApplication.load)

    def run(self):
        if not self.runs_command_line() and isinstance(self.app_uri, str) and type(self).load is WSGIApplication.load:
            # The workers import the app after the fork, as gunicorn's do.
            import rsgi

            settings = {k: v for k, v in self.cfg.given.items() if v is not None}
            sys.exit(rsgi.run(self.app_uri, **settings))
        super().run()


def run(prog=None):
    WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]", prog=prog).run()
