# corpus: serve
# Integers left as the strings the environment holds (gunicorn converts them).
import os

workers = os.getenv("GUNICORN_WORKERS", "2")
threads = os.environ.get("GUNICORN_THREADS", "3")
keepalive = "5"
max_requests = os.getenv("MAX_REQUESTS", "1000")
max_requests_jitter = "50"
backlog = "64"
limit_request_line = os.getenv("LIMIT_LINE", "8190")
