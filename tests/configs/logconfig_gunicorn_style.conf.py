# corpus: serve
# A logconfig_dict shaped like gunicorn's defaults, with its own date format.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False,
                           "qualname": "gunicorn.error"},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False,
                            "qualname": "gunicorn.access"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stdout"},
        "error_console": {"class": "logging.StreamHandler", "formatter": "plain",
                          "stream": "ext://sys.stderr"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(name)s] %(message)s",
                  "datefmt": "%Y-%m-%dT%H:%M:%S"},
    },
}
accesslog = "-"
