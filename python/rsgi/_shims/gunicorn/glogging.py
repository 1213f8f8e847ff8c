"""``gunicorn.glogging.Logger`` for configuration files that subclass it
(``logger_class``) when gunicorn is not installed.

rsgi builds the class with the settings (``Logger(cfg)``, which runs
``setup(cfg)``), then sends it every error-log line through ``info()``,
``warning()``, ``error()``... and every finished request through
``access(resp, req, environ, request_time)``, which formats
``access_log_format`` from ``atoms()``. The loggers are Python's
``gunicorn.error`` and ``gunicorn.access``, so a subclass can add handlers,
formatters or filters to them as it would under gunicorn.
"""

import base64
import binascii
import logging
import os
import sys
import threading
import time

from rsgi import _logging as _rsgi_logging

CONFIG_DEFAULTS = _rsgi_logging.defaults()


class SafeAtoms(dict):
    """Access-log atoms: any missing atom reads as ``-``; header and
    environ atoms (``{name}i``) are looked up without regard to case;
    double quotes in text values are escaped."""

    def __init__(self, atoms):
        super().__init__()
        for name, value in atoms.items():
            self[name] = value.replace('"', '\\"') if isinstance(value, str) else value

    def __getitem__(self, name):
        key = name.lower() if name.startswith("{") else name
        if key in self:
            return super().__getitem__(key)
        return "-"


class Logger:
    """gunicorn's logger interface on Python's ``logging``."""

    LOG_LEVELS = {
        "critical": logging.CRITICAL,
        "error": logging.ERROR,
        "warning": logging.WARNING,
        "info": logging.INFO,
        "debug": logging.DEBUG,
    }
    loglevel = logging.INFO

    error_fmt = r"%(asctime)s [%(process)d] [%(levelname)s] %(message)s"
    datefmt = r"[%Y-%m-%d %H:%M:%S %z]"
    access_fmt = "%(message)s"
    syslog_fmt = "[%(process)d] %(message)s"

    atoms_wrapper_class = SafeAtoms

    def __init__(self, cfg):
        self.error_log = logging.getLogger("gunicorn.error")
        self.error_log.propagate = False
        self.access_log = logging.getLogger("gunicorn.access")
        self.access_log.propagate = False
        self.error_handlers = []
        self.access_handlers = []
        self.logfile = None
        self.lock = threading.Lock()
        self.cfg = cfg
        self.setup(cfg)

    def setup(self, cfg):
        """Level, handlers for ``errorlog`` / ``accesslog``, then the
        logging configuration (``logconfig_dict``, ``logconfig_json``,
        ``logconfig``) over them."""
        self.cfg = cfg
        self.loglevel = self.LOG_LEVELS.get(str(cfg.loglevel).lower(), logging.INFO)
        self.error_log.setLevel(self.loglevel)
        self.access_log.setLevel(logging.INFO)
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                if getattr(handler, "_gunicorn", False):
                    log.removeHandler(handler)
        self._set_handler(self.error_log, cfg.errorlog, logging.Formatter(self.error_fmt, self.datefmt))
        if cfg.accesslog is not None:
            self._set_handler(self.access_log, cfg.accesslog, logging.Formatter(self.access_fmt),
                              stream=sys.stdout)
        logconfig_dict = getattr(cfg, "logconfig_dict", None)
        logconfig_json = getattr(cfg, "logconfig_json", None)
        logconfig = getattr(cfg, "logconfig", None)
        if logconfig_dict or logconfig_json or logconfig:
            try:
                _rsgi_logging.apply(logconfig, logconfig_dict, logconfig_json)
            except (AttributeError, ImportError, ValueError, TypeError) as exc:
                raise RuntimeError(str(exc)) from exc

    def _set_handler(self, log, output, fmt, stream=None):
        """Send ``log`` to ``output`` (``-`` is ``stream``, else stderr)."""
        handler = None
        for existing in list(log.handlers):
            if getattr(existing, "_gunicorn", False):
                log.removeHandler(existing)
        if output is None:
            return
        if output == "-":
            handler = logging.StreamHandler(stream)
        else:
            handler = logging.FileHandler(output)
        handler.setFormatter(fmt)
        handler._gunicorn = True
        log.addHandler(handler)

    def _get_gunicorn_handler(self, log):
        for handler in log.handlers:
            if getattr(handler, "_gunicorn", False):
                return handler
        return None

    def critical(self, msg, *args, **kwargs):
        self.error_log.critical(msg, *args, **kwargs)

    def error(self, msg, *args, **kwargs):
        self.error_log.error(msg, *args, **kwargs)

    def warning(self, msg, *args, **kwargs):
        self.error_log.warning(msg, *args, **kwargs)

    warn = warning

    def info(self, msg, *args, **kwargs):
        self.error_log.info(msg, *args, **kwargs)

    def debug(self, msg, *args, **kwargs):
        self.error_log.debug(msg, *args, **kwargs)

    def exception(self, msg, *args, **kwargs):
        self.error_log.exception(msg, *args, **kwargs)

    def log(self, lvl, msg, *args, **kwargs):
        if isinstance(lvl, str):
            lvl = self.LOG_LEVELS.get(lvl.lower(), logging.INFO)
        self.error_log.log(lvl, msg, *args, **kwargs)

    def now(self):
        """The time as the Apache common log format writes it."""
        return time.strftime("[%d/%b/%Y:%H:%M:%S %z]")

    def _get_user(self, environ):
        auth = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, creds = auth.partition(" ")
        if scheme.lower() != "basic" or not creds:
            return None
        try:
            decoded = base64.b64decode(creds.strip()).decode("latin-1")
        except (TypeError, binascii.Error, UnicodeDecodeError):
            return None
        return decoded.split(":", 1)[0]

    def atoms(self, resp, req, environ, request_time):
        """The values ``access_log_format`` can name."""
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        sent = getattr(resp, "sent", None)
        seconds, micros = request_time.seconds, request_time.microseconds
        method = environ.get("REQUEST_METHOD")
        protocol = environ.get("SERVER_PROTOCOL")
        values = {
            "h": environ.get("REMOTE_ADDR", "-"),
            "l": "-",
            "u": self._get_user(environ) or "-",
            "t": self.now(),
            "r": "%s %s %s" % (method, environ.get("RAW_URI"), protocol),
            "s": status,
            "m": method,
            "U": environ.get("PATH_INFO"),
            "q": environ.get("QUERY_STRING"),
            "H": protocol,
            "b": str(sent) if sent is not None else "-",
            "B": sent,
            "f": environ.get("HTTP_REFERER", "-"),
            "a": environ.get("HTTP_USER_AGENT", "-"),
            "T": seconds,
            "D": seconds * 1000000 + micros,
            "M": seconds * 1000 + micros // 1000,
            "L": "%d.%06d" % (seconds, micros),
            "p": "<%s>" % os.getpid(),
        }
        req_headers = getattr(req, "headers", req)
        if hasattr(req_headers, "items"):
            req_headers = req_headers.items()
        for name, value in req_headers:
            values["{%s}i" % name.lower()] = value
        resp_headers = resp.headers
        if hasattr(resp_headers, "items"):
            resp_headers = resp_headers.items()
        for name, value in resp_headers:
            values["{%s}o" % name.lower()] = value
        for name, value in environ.items():
            values["{%s}e" % str(name).lower()] = value
        return values

    @property
    def access_log_enabled(self):
        cfg = self.cfg
        return bool(cfg.accesslog or getattr(cfg, "logconfig", None) or getattr(cfg, "logconfig_dict", None)
                    or getattr(cfg, "logconfig_json", None)
                    or (cfg.syslog and not cfg.disable_redirect_access_to_syslog))

    def access(self, resp, req, environ, request_time):
        """One access-log line, when an access log is configured."""
        if not self.access_log_enabled:
            return
        atoms = self.atoms_wrapper_class(self.atoms(resp, req, environ, request_time))
        try:
            self.access_log.info(self.cfg.access_log_format, atoms)
        except Exception:
            import traceback

            self.error(traceback.format_exc())

    def reopen_files(self):
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if isinstance(handler, logging.FileHandler):
                    handler.acquire()
                    try:
                        if handler.stream:
                            handler.close()
                            handler.stream = handler._open()
                    finally:
                        handler.release()

    def close_on_exec(self):
        pass
