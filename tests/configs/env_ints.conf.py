# corpus: serve
# Sizes read from the environment with int(), defaults as strings and ints.
import os

host = os.getenv("HOST", "127.0.0.1")
port = int(os.getenv("PORT", "8000"))
bind = "%s:%d" % (host, port)
workers = int(os.getenv("WEB_WORKERS", "2"))
timeout = int(os.environ.get("APP_TIMEOUT", 60))
graceful_timeout = int(os.environ.get("APP_GRACEFUL_TIMEOUT", "20"))
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
wsgi_app = "corpus_app:app"
