"""Python ``logging`` output for rsgi, used only when the configuration sets
``logconfig``, ``logconfig_dict`` or ``logconfig_json``: as with gunicorn,
error-log lines then go to the ``gunicorn.error`` logger and access lines to
``gunicorn.access``, configured by the user's logging configuration on top of
defaults equivalent to gunicorn's.
"""

import json
import logging
import logging.config
import os

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


def configure(logconfig=None, logconfig_dict=None, logconfig_json=None):
    """Apply the user's logging configuration (the same order of preference
    as gunicorn: the dict, then the JSON file, then the ini file)."""
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


def emit(access, level, message):
    """Log one line from rsgi's Rust side."""
    (_ACCESS if access else _ERROR).log(level, message)
