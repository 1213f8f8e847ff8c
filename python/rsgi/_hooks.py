"""The objects rsgi hands to gunicorn-style server hooks.

gunicorn's hooks receive its arbiter, workers, requests and responses; these
small classes offer the attributes real configuration files use
(``server.log.info(...)``, ``server.cfg.workers``, ``worker.pid``,
``worker.age``, ``req.method``, ``req.path``, ``resp.status``...). rsgi builds
them from Rust when a hook is configured; nothing here runs otherwise.
"""

import time

from rsgi._rsgi import _log

DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50


class Log:
    """``server.log`` / ``worker.log``: lines go to rsgi's error log."""

    def _emit(self, level, msg, args):
        text = str(msg)
        if args:
            try:
                text = text % args
            except (TypeError, ValueError):
                text = " ".join([text] + [str(a) for a in args])
        _log(level, text)

    def debug(self, msg, *args, **kwargs):
        self._emit(DEBUG, msg, args)

    def info(self, msg, *args, **kwargs):
        self._emit(INFO, msg, args)

    def warning(self, msg, *args, **kwargs):
        self._emit(WARNING, msg, args)

    warn = warning

    def error(self, msg, *args, **kwargs):
        self._emit(ERROR, msg, args)

    def critical(self, msg, *args, **kwargs):
        self._emit(CRITICAL, msg, args)

    def exception(self, msg, *args, **kwargs):
        import traceback

        self._emit(ERROR, str(msg) + "\n" + traceback.format_exc().rstrip(), args)

    def log(self, level, msg, *args, **kwargs):
        self._emit(int(level), msg, args)

    def reopen_files(self):
        pass

    def close_on_exec(self):
        pass


def _log_object():
    """A custom ``logger_class`` instance when there is one, else ``Log``."""
    from rsgi._logging import current_logger

    return current_logger() or Log()


class Config:
    """``server.cfg``: every setting as an attribute (``cfg.workers``)."""

    def __init__(self, settings):
        self.__dict__.update(settings)
        self.settings = settings

    @property
    def uid(self):
        return self.user

    @property
    def gid(self):
        return self.group

    def __getattr__(self, name):
        raise AttributeError("rsgi has no setting named %r" % name)

    @property
    def address(self):
        return list(self.bind)

    @property
    def worker_class_str(self):
        return "gthread" if self.threads > 1 else "sync"

    def __str__(self):
        width = max(len(k) for k in self.settings)
        return "\n".join("%-*s = %s" % (width, k, self.settings[k]) for k in sorted(self.settings))


class Server:
    """The master (gunicorn's ``Arbiter``) as hooks see it."""

    def __init__(self, cfg, pid, num_workers, proc_name, app_uri):
        self.cfg = cfg
        self.log = _log_object()
        self.pid = pid
        self.num_workers = num_workers
        self.proc_name = proc_name
        self.app_uri = app_uri
        self.WORKERS = {}
        self.master_name = "Master"


class Worker:
    """A worker process as hooks see it."""

    def __init__(self, cfg, pid, ppid, age, app_uri):
        self.cfg = cfg
        self.log = _log_object()
        self.pid = pid
        self.ppid = ppid
        self.age = age
        self.app_uri = app_uri
        self.alive = True
        self.booted = False
        self.nr = 0
        self.max_requests = cfg.max_requests or None
        self.timeout = cfg.timeout

    def __str__(self):
        return "<Worker %s>" % self.pid


class Request:
    """``req`` for ``pre_request`` / ``post_request``."""

    def __init__(self, method, uri, path, query, fragment, version, headers, remote_addr, scheme):
        self.method = method
        self.uri = uri
        self.path = path
        self.query = query
        self.fragment = fragment
        self.version = version
        self.headers = headers
        self.remote_addr = remote_addr
        self.peer_addr = remote_addr
        self.scheme = scheme
        self.trailers = []
        self._started = time.monotonic()


class Response:
    """``resp`` for ``post_request``."""

    def __init__(self, status, headers, sent):
        self.status = status
        try:
            self.status_code = int(status.split()[0])
        except (ValueError, IndexError):
            self.status_code = None
        self.headers = headers
        self.sent = sent
        self.response_length = sent
