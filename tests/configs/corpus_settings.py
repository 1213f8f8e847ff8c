"""A project's own settings module, imported by configuration files that
read their values from it (a sibling of the configuration file)."""

import os

WEB_CONCURRENCY = int(os.environ.get("CORPUS_WORKERS", "2"))
REQUEST_TIMEOUT = 45
SERVICE_NAME = "corpus-service"
