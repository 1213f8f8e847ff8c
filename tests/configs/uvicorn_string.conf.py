# corpus: asgi (checks; serving needs an ASGI app)
# The ASGI worker named by its dotted path, from the environment.
import os

worker_class = os.environ.get("WORKER_CLASS", "uvicorn.workers.UvicornWorker")
workers = int(os.environ.get("WORKERS", 2))
keepalive = 120
