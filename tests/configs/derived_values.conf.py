# corpus: serve
# Values computed from one another, and from a string in the environment.
import os

timeout = int(os.environ.get("TIMEOUT", "90"))
graceful_timeout = timeout // 3
keepalive = min(75, timeout)
max_requests = 2000 if os.environ.get("ENVIRONMENT", "production") == "production" else 0
max_requests_jitter = max_requests // 10
workers = 1
capture_output = True
