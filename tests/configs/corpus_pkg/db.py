"""A pretend database connection, as apps keep one per process: opened on
first use, and closed by ``post_fork`` so a worker never shares the
master's (the ``preload_app`` pattern)."""

import os


class Connection:
    def __init__(self):
        self.opened_in = os.getpid()


_conn = None
_closed_in = []


def connection():
    global _conn
    if _conn is None:
        _conn = Connection()
    return _conn


def close_all():
    """What ``django.db.connections.close_all()`` and engine.dispose() do."""
    global _conn
    if _conn is not None:
        _closed_in.append(os.getpid())
    _conn = None


def closed_in():
    return list(_closed_in)
