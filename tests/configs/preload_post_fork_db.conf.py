# corpus: serve
# preload_app with a database touched in the master: each worker drops the
# inherited connection right after the fork.
from corpus_pkg import db

preload_app = True
workers = 2


def on_starting(server):
    db.connection()


def post_fork(server, worker):
    db.close_all()
    server.log.info("Worker spawned (pid: %s): connections reset", worker.pid)
