"""``gunicorn.app.base.BaseApplication``: the "custom application" pattern.

A subclass fills ``self.cfg`` in ``load_config()`` and returns the WSGI app
from ``load()``; ``run()`` then starts rsgi with that app and those
settings (``rsgi.run``) and exits with its status.
"""

import sys

from gunicorn.config import Config


class BaseApplication:
    def __init__(self, usage=None, prog=None):
        self.usage = usage
        self.cfg = None
        self.callable = None
        self.prog = prog
        self.logger = None
        self.do_load_config()

    def do_load_config(self):
        try:
            self.load_default_config()
            self.load_config()
        except Exception as e:
            print("\nError: %s" % e, file=sys.stderr)
            sys.stderr.flush()
            sys.exit(1)

    def load_default_config(self):
        self.cfg = Config(self.usage, prog=self.prog)

    def init(self, parser, opts, args):
        raise NotImplementedError

    def load(self):
        raise NotImplementedError

    def load_config(self):
        raise NotImplementedError

    def reload(self):
        self.do_load_config()

    def wsgi(self):
        if self.callable is None:
            self.callable = self.load()
        return self.callable

    def run(self):
        import rsgi

        settings = {k: v for k, v in self.cfg.given.items() if v is not None}
        sys.exit(rsgi.run(self.wsgi(), **settings))


class Application(BaseApplication):
    """gunicorn's command-line application. Used as is, it runs rsgi's
    command line; a subclass that returns settings from ``init()`` (or fills
    ``self.cfg`` in ``load_config()``) and the app from ``load()`` runs like
    a ``BaseApplication``."""

    def init(self, parser, opts, args):
        return None

    def load_config(self):
        if type(self).init is not Application.init:
            for key, value in (self.init(None, None, sys.argv[1:]) or {}).items():
                self.cfg.set(key.lower(), value)

    def runs_command_line(self):
        """True when nothing of the application is the subclass's own."""
        kind = type(self)
        return (kind.init is Application.init and kind.load_config is Application.load_config
                and kind.load is BaseApplication.load)

    def run(self):
        if self.runs_command_line():
            from rsgi._rsgi import main

            sys.exit(main(["rsgi"] + sys.argv[1:]))
        super().run()
