"""A configuration that sets many settings, for the --print-config comparison
with gunicorn (test_config.py).  Nothing here is started: only printed."""

import grp
import os
import pwd

bind = ["127.0.0.1:9001", "unix:/tmp/rsgi-print-config.sock", "[::1]:9002"]
backlog = 64
workers = 3
worker_class = "gthread"
threads = 4
worker_connections = 50
timeout = 45
graceful_timeout = 12
keepalive = 7
max_requests = 1000
max_requests_jitter = 50
limit_request_line = 2048
limit_request_fields = 50
limit_request_field_size = 4096
forwarded_allow_ips = "10.0.0.1, 10.0.0.2"
proxy_protocol = "v1"
proxy_allow_ips = "127.0.0.1"
secure_scheme_headers = {"X-PROTO": "https", "X-SSL": "on"}
forwarder_headers = "SCRIPT_NAME,X_FOO"
header_map = "refuse"
strip_header_spaces = True
permit_unconventional_http_method = True
casefold_http_method = True
permit_obsolete_folding = True
proc_name = "print-config-app"
raw_env = ["A=1", "B=two=2"]
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %({x-forwarded-for}i)s %({remote_port}e)s'
errorlog = "/tmp/rsgi-print-config-error.log"
loglevel = "debug"
capture_output = True
preload_app = True
pidfile = "/tmp/rsgi-print-config.pid"
umask = 0o022
user = pwd.getpwuid(os.getuid()).pw_name
group = grp.getgrgid(os.getgid()).gr_name
chdir = os.path.dirname(os.path.abspath(__file__))
pythonpath = "/tmp/a,/tmp/b"
worker_tmp_dir = "/dev/shm"
tmp_upload_dir = "/tmp"
sendfile = False
dogstatsd_tags = "env:test"
statsd_prefix = "app"
root_path = "/root-path"
wsgi_app = "cfgapp:routes"

not_a_setting = "ignored by both servers"


def on_starting(server):
    pass


def on_reload(server):
    pass


def when_ready(server):
    pass


def pre_fork(server, worker):
    pass


def post_fork(server, worker):
    pass


def post_worker_init(worker):
    pass


def worker_int(worker):
    pass


def pre_exec(server):
    pass


def pre_request(worker, req):
    pass


def post_request(worker, req, environ, resp):
    pass


def child_exit(server, worker):
    pass


def worker_exit(server, worker):
    pass


def nworkers_changed(server, new_value, old_value):
    pass


def on_exit(server):
    pass
