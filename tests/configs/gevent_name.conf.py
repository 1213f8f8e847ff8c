# corpus: serve
# gevent by its short name, with many connections per worker.
worker_class = "gevent"
worker_connections = 2000
workers = 3
