"""gunicorn's worker names; rsgi maps each to a worker kind by name or by
base class (see ``rsgi._compat``)."""

SUPPORTED_WORKERS = {
    "sync": "gunicorn.workers.sync.SyncWorker",
    "gevent": "gunicorn.workers.ggevent.GeventWorker",
    "gevent_wsgi": "gunicorn.workers.ggevent.GeventPyWSGIWorker",
    "gevent_pywsgi": "gunicorn.workers.ggevent.GeventPyWSGIWorker",
    "tornado": "gunicorn.workers.gtornado.TornadoWorker",
    "gthread": "gunicorn.workers.gthread.ThreadWorker",
    "asgi": "gunicorn.workers.gasgi.ASGIWorker",
}
