"""Every server hook raises.  rsgi logs "Exception in NAME hook" with the
traceback and keeps serving (test_hooks.py)."""


def _fail(name):
    raise RuntimeError("%s failed on purpose" % name)


def on_starting(server):
    _fail("on_starting")


def when_ready(server):
    _fail("when_ready")


def pre_fork(server, worker):
    _fail("pre_fork")


def post_fork(server, worker):
    _fail("post_fork")


def post_worker_init(worker):
    _fail("post_worker_init")


def pre_request(worker, req):
    _fail("pre_request")


def post_request(worker, req, environ, resp):
    _fail("post_request")


def nworkers_changed(server, new_value, old_value):
    _fail("nworkers_changed")


def on_reload(server):
    _fail("on_reload")


def worker_exit(server, worker):
    _fail("worker_exit")


def child_exit(server, worker):
    _fail("child_exit")


def on_exit(server):
    _fail("on_exit")
