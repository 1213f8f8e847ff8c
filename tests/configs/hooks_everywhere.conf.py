# corpus: serve
# Every common hook, logging through server.log / worker.log.
workers = 2


def on_starting(server):
    server.log.info("on_starting: %s workers", server.cfg.workers)


def pre_fork(server, worker):
    pass


def post_fork(server, worker):
    server.log.info("Worker spawned (pid: %s)", worker.pid)


def post_worker_init(worker):
    worker.log.info("post_worker_init in %s", worker.pid)


def pre_request(worker, req):
    worker.log.debug("%s %s", req.method, req.path)


def post_request(worker, req, environ, resp):
    pass


def worker_int(worker):
    worker.log.info("worker received INT or QUIT signal")


def worker_abort(worker):
    worker.log.info("worker received SIGABRT signal")


def worker_exit(server, worker):
    server.log.info("worker exit: %s", worker.pid)
