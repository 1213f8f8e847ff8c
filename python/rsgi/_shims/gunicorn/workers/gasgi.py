"""``gunicorn.workers.gasgi.ASGIWorker``: gunicorn's ASGI worker, a name
rsgi recognises as the ASGI kind."""

from gunicorn.workers.base import Worker


class ASGIWorker(Worker):
    pass
