"""rsgi's stand-in for ``uvicorn.workers``, used only when the installed
uvicorn has no such module: the worker names and their ``CONFIG_KWARGS``,
which rsgi reads to pick (and configure) its ASGI worker kind."""

from gunicorn.workers.base import Worker


class UvicornWorker(Worker):
    CONFIG_KWARGS = {"loop": "auto", "http": "auto"}


class UvicornH11Worker(UvicornWorker):
    CONFIG_KWARGS = {"loop": "asyncio", "http": "h11"}
