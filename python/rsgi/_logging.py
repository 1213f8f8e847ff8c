"""Python ``logging`` output for rsgi, used only when the configuration sets
``logconfig``, ``logconfig_dict`` or ``logconfig_json``: as with gunicorn,
error-log lines then go to the ``gunicorn.error`` logger and access lines to
``gunicorn.access``, configured by the user's logging configuration on top of
defaults equivalent to gunicorn's.

With a custom ``logger_class`` an instance of it (built with the settings,
so its ``setup(cfg)`` runs as under gunicorn) gets every error-log line
through ``info()``, ``error()``... and every request through
``access(resp, req, environ, request_time)``.
"""

import datetime
import json
import logging
import logging.config
import os
import sys
import time
import traceback

_FORMAT = {
    "format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
    "datefmt": "[%Y-%m-%d %H:%M:%S %z]",
    "class": "logging.Formatter",
}


def defaults():
    """The base configuration every user configuration is laid over."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": True,
                               "qualname": "gunicorn.error"},
            "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": True,
                                "qualname": "gunicorn.access"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "generic", "stream": "ext://sys.stdout"},
            "error_console": {"class": "logging.StreamHandler", "formatter": "generic",
                              "stream": "ext://sys.stderr"},
        },
        "formatters": {"generic": dict(_FORMAT)},
    }


def _handler(output, stream, fmt):
    handler = logging.StreamHandler(stream) if output == "-" else logging.FileHandler(output)
    handler.setFormatter(fmt)
    return handler


def configure(logconfig=None, logconfig_dict=None, logconfig_json=None, accesslog=None, errorlog="-"):
    """Apply the user's logging configuration (the same order of preference
    as gunicorn: the dict, then the JSON file, then the ini file). As
    gunicorn, the two loggers first get their level and a handler for
    ``errorlog`` / ``accesslog``, which the configuration replaces where it
    configures those loggers. (rsgi hands over only the error lines at or
    above ``loglevel``.)"""
    error = logging.getLogger("gunicorn.error")
    error.propagate = False
    error.setLevel(logging.DEBUG)
    error.addHandler(_handler(errorlog or "-", sys.stderr, logging.Formatter(_FORMAT["format"], _FORMAT["datefmt"])))
    access = logging.getLogger("gunicorn.access")
    access.propagate = False
    access.setLevel(logging.INFO)
    if accesslog is not None:
        access.addHandler(_handler(accesslog, sys.stdout, logging.Formatter("%(message)s")))
    apply(logconfig, logconfig_dict, logconfig_json)


def apply(logconfig=None, logconfig_dict=None, logconfig_json=None):
    """The logging configuration alone, over ``defaults()`` (a custom
    logger's ``setup()`` has set up its handlers itself)."""
    if logconfig_dict:
        config = defaults()
        config.update(logconfig_dict)
        logging.config.dictConfig(config)
    elif logconfig_json:
        config = defaults()
        with open(logconfig_json) as f:
            config.update(json.load(f))
        logging.config.dictConfig(config)
    elif logconfig:
        if not os.path.exists(logconfig):
            raise RuntimeError("log config %r not found" % logconfig)
        base = defaults()
        base["__file__"] = logconfig
        base["here"] = os.path.dirname(logconfig)
        logging.config.fileConfig(logconfig, defaults=base, disable_existing_loggers=False)


_ERROR = logging.getLogger("gunicorn.error")
_ACCESS = logging.getLogger("gunicorn.access")


_LOGGER = None
_METHODS = {50: "critical", 40: "error", 30: "warning", 20: "info", 10: "debug"}


def install_logger(cls, cfg):
    """Build the configuration's ``logger_class`` as gunicorn does."""
    global _LOGGER
    if hasattr(cls, "install"):
        cls.install()
    _LOGGER = cls(cfg)
    return _LOGGER


def current_logger():
    """The custom logger, when the configuration has one (hooks'
    ``server.log`` and ``worker.log`` are then this object)."""
    return _LOGGER


def emit(access, level, message):
    """Log one line from rsgi's Rust side."""
    if _LOGGER is not None and not access:
        getattr(_LOGGER, _METHODS.get(level, "info"))(message)
        return
    (_ACCESS if access else _ERROR).log(level, message)


def reopen():
    """USR1: the custom logger reopens its log files; otherwise the file
    handlers of ``gunicorn.error`` and ``gunicorn.access`` reopen theirs."""
    if _LOGGER is not None:
        if hasattr(_LOGGER, "reopen_files"):
            _LOGGER.reopen_files()
        return
    for log in (_ERROR, _ACCESS):
        for handler in log.handlers:
            if isinstance(handler, logging.FileHandler):
                handler.acquire()
                try:
                    handler.close()
                    handler.stream = handler._open()
                finally:
                    handler.release()


def access(resp, req, environ):
    """Hand one finished request to the custom logger's ``access()``."""
    if _LOGGER is None:
        return
    started = getattr(req, "_started", None)
    elapsed = time.monotonic() - started if started is not None else 0.0
    try:
        _LOGGER.access(resp, req, environ, datetime.timedelta(seconds=elapsed))
    except Exception:
        _LOGGER.error(traceback.format_exc())


def access_hook(user_hook=None):
    """The ``post_request`` rsgi runs with a custom logger: ``access()``
    first, then the configuration's own hook (gunicorn's order)."""

    def post_request(worker, req, environ, resp):
        access(resp, req, environ)
        if user_hook is not None:
            user_hook(worker, req, environ, resp)

    post_request.__qualname__ = getattr(user_hook, "__qualname__", "PostRequest.post_request")
    return post_request
