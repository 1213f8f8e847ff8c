# corpus: asgi (checks; serving needs an ASGI app)
# An ASGI project's worker: uvicorn's, with its loop and lifespan pinned.
from uvicorn.workers import UvicornWorker


class ProjectWorker(UvicornWorker):
    CONFIG_KWARGS = {"loop": "asyncio", "lifespan": "off", "http": "h11", "proxy_headers": True}


worker_class = ProjectWorker
workers = 2
