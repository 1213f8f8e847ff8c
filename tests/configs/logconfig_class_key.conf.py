# corpus: serve
# The same formatter named with the "class" key, and a root logger too.
loglevel = "debug"
logconfig_dict = {
    "version": 1,
    "root": {"level": "WARNING", "handlers": ["console"]},
    "formatters": {
        "structured": {"class": "corpus_pkg.logfmt.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "structured"},
    },
    "loggers": {
        "gunicorn.error": {"level": "DEBUG", "handlers": ["console"], "propagate": False},
    },
}
