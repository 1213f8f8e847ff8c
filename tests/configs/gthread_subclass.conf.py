# corpus: serve
# A project subclass of the threaded worker, named by its dotted path.
from corpus_pkg import DEFAULT_THREADS

worker_class = "corpus_workers.TracingThreadWorker"
threads = DEFAULT_THREADS + 1
workers = 1
