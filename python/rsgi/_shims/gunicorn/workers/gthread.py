"""``gunicorn.workers.gthread.ThreadWorker``: served by rsgi's own worker
with ``--threads``."""

from gunicorn.workers.base import Worker


class ThreadWorker(Worker):
    pass
