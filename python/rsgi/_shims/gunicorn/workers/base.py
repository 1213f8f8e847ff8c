"""``gunicorn.workers.base.Worker``: the class worker classes derive from.

rsgi never instantiates worker classes: it reads which of gunicorn's
workers a class derives from (and a uvicorn worker's ``CONFIG_KWARGS``) and
serves with its own worker of that kind.
"""


class Worker:
    """Base of every worker class."""

    def __init__(self, age, ppid, sockets, app, timeout, cfg, log):
        self.age = age
        self.ppid = ppid
        self.sockets = sockets
        self.app = app
        self.timeout = timeout
        self.cfg = cfg
        self.log = log
        self.booted = False
        self.aborted = False
        self.alive = True
        self.nr = 0
        self.max_requests = getattr(cfg, "max_requests", 0) or None

    def __str__(self):
        return "<Worker %s>" % getattr(self, "pid", "?")

    def init_process(self):
        raise NotImplementedError("rsgi runs its own worker; this class is only a name")

    def run(self):
        raise NotImplementedError("rsgi runs its own worker; this class is only a name")

    def notify(self):
        pass

    def load_wsgi(self):
        self.wsgi = self.app.wsgi()
