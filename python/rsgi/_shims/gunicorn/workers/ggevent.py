"""``gunicorn.workers.ggevent``: the gevent workers, importable for
subclassing without gevent installed; rsgi recognises them (and their
subclasses) as the gevent kind."""

from gunicorn.workers.base_async import AsyncWorker


class GeventWorker(AsyncWorker):
    server_class = None
    wsgi_handler = None


class GeventPyWSGIWorker(GeventWorker):
    pass
