"""``gunicorn.workers.base_async.AsyncWorker``: the base of the gevent
workers (a kind rsgi does not have yet)."""

from gunicorn.workers.base import Worker


class AsyncWorker(Worker):
    pass
