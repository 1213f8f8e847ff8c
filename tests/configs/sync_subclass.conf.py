# corpus: serve
# A project subclass of the sync worker.
from gunicorn.workers.sync import SyncWorker


class QuietSyncWorker(SyncWorker):
    """Would quieten a noisy log line; rsgi's worker serves instead."""


worker_class = QuietSyncWorker
workers = 1
