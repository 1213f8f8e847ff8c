# corpus: serve
# Old spellings: an egg: entry point and eventlet.
import os

worker_class = os.environ.get("CORPUS_EGG_WORKER", "egg:meinheld#gunicorn_worker")
workers = 1
