"""Every gunicorn server hook, each appending one JSON line to the file named
by $HOOK_LOG: {"hook": NAME, "pid": os.getpid(), ...what it saw}.

test_hooks.py reads the lines back to check which hooks ran, in which
process, in which order, and with which arguments.
"""

import json
import os


def _record(hook, **fields):
    line = json.dumps(dict(hook=hook, pid=os.getpid(), **fields)) + "\n"
    fd = os.open(os.environ["HOOK_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one write per line: safe across processes
    finally:
        os.close(fd)


def on_starting(server):
    server.log.info("on_starting hook says hello")
    cfg = server.cfg
    _record("on_starting", server_pid=server.pid, cfg={
        "workers": cfg.workers,
        "threads": cfg.threads,
        "bind": list(cfg.bind),
        "timeout": cfg.timeout,
        "max_requests": cfg.max_requests,
        "proc_name": cfg.proc_name,
        "raw_env": list(cfg.raw_env),
        "keepalive": cfg.keepalive,
    })


def on_reload(server):
    _record("on_reload", server_pid=server.pid)


def when_ready(server):
    _record("when_ready", server_pid=server.pid)


def pre_fork(server, worker):
    _record("pre_fork", server_pid=server.pid, age=worker.age)


def post_fork(server, worker):
    worker.log.info("post_fork hook in worker %s", worker.pid)
    _record("post_fork", server_pid=server.pid, worker_pid=worker.pid, ppid=worker.ppid,
            age=worker.age)


def post_worker_init(worker):
    _record("post_worker_init", worker_pid=worker.pid, age=worker.age)


def worker_int(worker):
    _record("worker_int", worker_pid=worker.pid)


def worker_abort(worker):
    _record("worker_abort", worker_pid=worker.pid)


def pre_exec(server):
    _record("pre_exec", server_pid=server.pid)


def pre_request(worker, req):
    _record("pre_request", worker_pid=worker.pid, method=req.method, path=req.path,
            query=req.query, uri=req.uri, headers=[list(h) for h in req.headers])


def post_request(worker, req, environ, resp):
    _record("post_request", worker_pid=worker.pid, path=req.path,
            path_info=environ.get("PATH_INFO"), seen=environ.get("cfgapp.seen"),
            status=str(resp.status), status_code=resp.status_code)


def child_exit(server, worker):
    _record("child_exit", server_pid=server.pid, worker_pid=worker.pid)


def worker_exit(server, worker):
    _record("worker_exit", server_pid=server.pid, worker_pid=worker.pid)


def nworkers_changed(server, new_value, old_value):
    _record("nworkers_changed", new=new_value, old=old_value)


def on_exit(server):
    _record("on_exit", server_pid=server.pid)
