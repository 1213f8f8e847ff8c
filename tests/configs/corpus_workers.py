"""Worker classes a project keeps in its own module."""

from gunicorn.workers.gthread import ThreadWorker


class TracingThreadWorker(ThreadWorker):
    pass
