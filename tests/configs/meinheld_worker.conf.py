# corpus: serve
# An abandoned third-party WSGI worker, by dotted path.
worker_class = "meinheld.gmeinheld.MeinheldWorker"
workers = 1
