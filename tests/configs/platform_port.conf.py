# corpus: serve
# A platform that hands out the port: bind to all interfaces on $PORT.
import os

bind = ":" + os.environ.get("PORT", "5000")
workers = int(os.environ.get("WEB_CONCURRENCY", 1))
timeout = 120
