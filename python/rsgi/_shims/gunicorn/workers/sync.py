"""``gunicorn.workers.sync.SyncWorker``: served by rsgi's own worker."""

from gunicorn.workers.base import Worker


class StopWaiting(Exception):
    """Named by code that subclasses the sync worker."""


class SyncWorker(Worker):
    pass
