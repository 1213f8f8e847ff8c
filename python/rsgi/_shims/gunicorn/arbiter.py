"""``gunicorn.arbiter.Arbiter``: named by worker modules that import it
(uvicorn's does); rsgi's master is written in Rust and never uses this."""


class Arbiter:
    """A placeholder with gunicorn's signal names."""

    WORKER_BOOT_ERROR = 3
    APP_LOAD_ERROR = 4
    SIGNALS = ["HUP", "QUIT", "INT", "TERM", "TTIN", "TTOU", "USR1", "USR2", "WINCH"]

    def __init__(self, app):
        self.app = app
        self.cfg = getattr(app, "cfg", None)
