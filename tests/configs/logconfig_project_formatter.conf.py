# corpus: serve
# logconfig_dict whose formatter is a class of the project ("()" factory key).
accesslog = "-"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "WARNING", "handlers": ["err"]},
    "formatters": {
        "json": {"()": "corpus_pkg.logfmt.JsonFormatter", "service": "corpus-api"},
    },
    "handlers": {
        "out": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
        "err": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
    },
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["err"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["out"], "propagate": False},
    },
}
