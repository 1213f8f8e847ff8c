"""The WSGI app the configuration corpus serves.

``/`` answers JSON about the process and the request (``?env=A,B`` adds
those environment variables); ``/db`` says which process opened the
project's pretend database connection; ``/metrics`` is prometheus_client's
multiprocess exposition (merged across workers) when
``PROMETHEUS_MULTIPROC_DIR`` is set; every request counts in
``corpus_requests_total``, and each worker that served shows in the
``corpus_workers_alive`` live gauge (its file goes when ``child_exit``
marks the worker dead).
"""

import json
import os

from corpus_pkg import db

IMPORTED_IN = os.getpid()
_metrics = None


def _counter():
    global _metrics
    if _metrics is None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import Counter, Gauge

        _metrics = Counter("corpus_requests", "Requests served by the corpus app", ["path"])
        Gauge("corpus_workers_alive", "Workers that served", multiprocess_mode="livesum").set(1)
    return _metrics


def _metrics_page():
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    counter = _counter()
    if counter is not None:
        counter.labels(path=path).inc()
    if path == "/metrics":
        body = _metrics_page()
        start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4")])
        return [body]
    if path == "/db":
        conn = db.connection()
        info = {"pid": os.getpid(), "opened_in": conn.opened_in, "closed_before": db.closed_in()}
    else:
        names = [n for n in environ.get("QUERY_STRING", "").partition("env=")[2].split(",") if n]
        info = {
            "pid": os.getpid(),
            "imported_in": IMPORTED_IN,
            "path": path,
            "scheme": environ["wsgi.url_scheme"],
            "server_software": environ.get("SERVER_SOFTWARE"),
            "env": {n: os.environ.get(n) for n in names},
        }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(info).encode()]


def create_app(name="corpus"):
    """A factory, as ``corpus_app:create_app()`` names it."""
    return app
