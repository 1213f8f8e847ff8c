"""The gevent worker (``-k gevent``): every spelling selects it; one worker
serves many slow requests at once, at most ``--worker-connections`` of them,
leaving the rest to its siblings; patched I/O in the app does not hold other
requests; the hooks run patched; ``--timeout``, graceful stops and
``--max-requests`` behave as for the threaded worker. The HTTP corpus, the
PEP 3333 suites and the Flask and Django examples run through this worker
too (their fixtures take ``conftest.WORKER_KINDS``).

Concurrency is proven by what the app saw, never by timing: a request of
``/gate`` waits (cooperatively) until N requests are in flight in its
worker, and reports the most it has seen at once.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import conftest
from _rawhttp import get, wait_for
from test_gunicorn_compat import corpus_env
from test_master import booted_pids, log_records

pytest.importorskip("gevent")

pytestmark = pytest.mark.skipif(conftest.SERVER_KIND == "gunicorn", reason="rsgi's gevent worker")

APP = "gevent_apps:app"


def counter_env(tmp_path):
    return {"GEVENT_COUNTER": str(tmp_path / "started")}


def messages(srv):
    return [m for _, _, m in log_records(srv)]


def gather(srv, paths, timeout=60.0):
    """GET every path at once (a connection each); returns the responses
    (or the exception a request raised) in order."""
    out = [None] * len(paths)

    def one(i, path):
        try:
            out[i] = get(srv, path, timeout=timeout)
        except Exception as exc:  # reported by the caller
            out[i] = exc

    threads = [threading.Thread(target=one, args=(i, p), daemon=True) for i, p in enumerate(paths)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 10)
    return out


def bodies(responses):
    failed = [r for r in responses if getattr(r, "status", None) != 200]
    assert not failed, failed[:5]
    return [json.loads(r.body) for r in responses]


# -- selecting the worker ------------------------------------------------------

GEVENT_SUBCLASS = """
from gunicorn.workers.ggevent import GeventWorker
class PatchedGeventWorker(GeventWorker):
    pass
worker_class = PatchedGeventWorker
"""


@pytest.mark.parametrize("spelling", [
    ["-k", "gevent"],
    ["-k", "gevent_wsgi"],
    ["-k", "gevent_pywsgi"],
    ["-k", "egg:gunicorn#gevent"],
    ["-k", "gunicorn.workers.ggevent.GeventWorker"],
    ["--worker-class=gunicorn.workers.ggevent.GeventPyWSGIWorker"],
    ["-c", "subclass"],
])
def test_every_spelling_selects_the_gevent_worker(start_server, tmp_path, spelling):
    env = {}
    if spelling[0] == "-c":
        conf = tmp_path / "subclass.conf.py"
        conf.write_text(GEVENT_SUBCLASS)
        spelling = ["-c", str(conf)]
        env = corpus_env(tmp_path, "gunicorn-missing")
    srv = start_server(APP, *spelling, env=env)
    assert get(srv, "/hello").status == 200
    assert "Using worker: gevent" in messages(srv), srv.log()


def test_without_gevent_the_worker_is_refused_with_one_line(tmp_path):
    hidden = tmp_path / "hidden"
    (hidden / "gevent").mkdir(parents=True)
    (hidden / "gevent" / "__init__.py").write_text("raise ImportError('No module named gevent')\n")
    env = dict(os.environ, PYTHONPATH=str(hidden))
    res = subprocess.run([conftest.server_executable(), APP, "-k", "gevent", "-b", "127.0.0.1:%d" % conftest.free_port()],
                         cwd=str(conftest.APPS), env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("Error: Invalid value for worker_class: ")
    assert "gevent package" in lines[0] and "pip install 'rsgi[gevent]'" in lines[0], lines[0]


def test_a_config_file_from_the_articles_starts_and_says_what_it_does_with_threads(start_server, tmp_path):
    logfile = tmp_path / "app.log"
    conf = tmp_path / "gunicorn.conf.py"
    # `logfile` is no gunicorn setting (gunicorn ignores it too; the error
    # log is `errorlog`): both are set, as such files often have.
    conf.write_text("worker_class = 'gevent'\nthreads = 5\nworkers = 1\nlogfile = %r\nerrorlog = %r\n"
                    % (str(logfile), str(tmp_path / "error.log")))
    srv = start_server(APP, "-c", str(conf))
    assert get(srv, "/hello").status == 200
    errorlog = tmp_path / "error.log"
    assert wait_for(lambda: errorlog.exists() and "Using worker: gevent" in errorlog.read_text())
    text = errorlog.read_text()
    assert "threads = 5 is not used by the gevent worker" in text, text
    assert len(re.findall(r"Booting worker with pid", text)) == 1, text


# -- concurrency -----------------------------------------------------------------

def test_two_hundred_slow_requests_are_served_at_once_by_one_worker(start_server, tmp_path):
    srv = start_server(APP, "-k", "gevent", "-w", "1", env=counter_env(tmp_path))
    docs = bodies(gather(srv, ["/gate?until=200&sleep=0.5"] * 200))
    assert len({d["pid"] for d in docs}) == 1
    # Each request waited until all 200 were inside the app together.
    assert max(d["max"] for d in docs) == 200


def test_worker_connections_caps_the_requests_in_flight(start_server, tmp_path):
    srv = start_server(APP, "-k", "gevent", "-w", "1", "--worker-connections", "50", env=counter_env(tmp_path))
    # The first 50 go on once 50 are in flight; the other 30 once all 80
    # have started. A worker taking more than 50 would report more.
    docs = bodies(gather(srv, ["/gate?until=50&total=80&sleep=0"] * 80))
    assert max(d["max"] for d in docs) == 50


def test_a_full_worker_leaves_the_rest_to_its_sibling(start_server, tmp_path):
    srv = start_server(APP, "-k", "gevent", "-w", "2", "--worker-connections", "50", env=counter_env(tmp_path))
    assert wait_for(lambda: len(booted_pids(srv)) == 2)
    # Nobody goes on until all 80 have started: one worker can hold only 50.
    docs = bodies(gather(srv, ["/gate?until=81&total=80&sleep=0"] * 80))
    by_pid = {}
    for d in docs:
        by_pid[d["pid"]] = max(by_pid.get(d["pid"], 0), d["max"])
    assert len(by_pid) == 2, by_pid
    assert all(peak <= 50 for peak in by_pid.values()), by_pid


TRICKLING = 50


def test_clients_still_sending_their_head_hold_no_greenlet(start_server, tmp_path):
    # Room for the trickling clients and the requests as connections: what
    # is counted is greenlets, and a connection whose head is not complete
    # must cost a buffer in the loop, not a greenlet.
    srv = start_server(APP, "-k", "gevent", "-w", "1", "--worker-connections", "100", env=counter_env(tmp_path))
    trickling = []
    try:
        for _ in range(TRICKLING):
            s = srv.connect(timeout=20)
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n")  # never finished
            trickling.append(s)
        # One worker accepts in order: these ten are served after all the
        # trickling connections were taken, and each waits in the app until
        # all ten are in flight.
        docs = bodies(gather(srv, ["/gate?until=10&total=10&sleep=0&greenlets=1"] * 10))
        assert max(d["max"] for d in docs) == 10
        # The first to leave the wait counted all ten requests' greenlets
        # (and the hub's few); a greenlet per connection would have made
        # every count more than TRICKLING.
        counts = [d["greenlets"] for d in docs]
        assert max(counts) >= 10 and max(counts) < TRICKLING, counts
        assert held_open(trickling) == TRICKLING
    finally:
        for s in trickling:
            s.close()


def held_open(socks):
    """How many of `socks` the server has neither answered nor closed."""
    alive = 0
    for s in socks:
        s.setblocking(False)
        try:
            s.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            alive += 1
    return alive


def test_a_request_waiting_on_a_slow_upstream_does_not_hold_the_others(start_server):
    upstream = socket.socket()
    upstream.bind(("127.0.0.1", 0))
    upstream.listen(8)
    accepted, release = threading.Event(), threading.Event()

    def serve_upstream():
        conn, _ = upstream.accept()
        accepted.set()
        release.wait(60)
        conn.sendall(b"from upstream\n")
        conn.close()

    threading.Thread(target=serve_upstream, daemon=True).start()
    srv = start_server(APP, "-k", "gevent", "-w", "1")
    slow = gather_later(srv, "/upstream?port=%d" % upstream.getsockname()[1])
    try:
        assert accepted.wait(30), srv.log()
        # The upstream has not answered: the worker serves others meanwhile.
        assert get(srv, "/hello", timeout=20).status == 200
        assert not slow.done.is_set()
    finally:
        release.set()
    assert slow.done.wait(30)
    assert json.loads(slow.response.body) == {"line": "from upstream"}
    upstream.close()


def test_a_request_waiting_for_its_body_does_not_hold_the_others(start_server, tmp_path):
    srv = start_server(APP, "-k", "gevent", "-w", "1")
    marker = tmp_path / "reading"
    size = 1 << 20  # more than the loop buffers before the app starts
    head = ("POST /upload?marker=%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % (marker, size)).encode()
    with srv.connect(timeout=30) as upload:
        upload.sendall(head + b"a" * (size // 2))
        assert wait_for(marker.exists, timeout=20), srv.log()
        # The app waits for the rest of the body, which has not been sent.
        assert get(srv, "/hello", timeout=20).status == 200
        upload.sendall(b"a" * (size - size // 2))
        reply = b""
        while not reply.endswith(b"}"):
            data = upload.recv(65536)
            if not data:
                break
            reply += data
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b'{"read": %d}' % size), reply[:300]


def _held_by_a_slow_reader(srv, path, marker):
    """Request ``path`` (which touches ``marker`` once it waits for the
    client) and read nothing; once the marker is there, another request is
    answered meanwhile; then read the held response to its close."""
    with srv.connect(timeout=30) as reader:
        reader.sendall(b"GET %s?marker=%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                       % (path, str(marker).encode()))
        assert wait_for(marker.exists, timeout=20), srv.log()
        assert get(srv, "/hello", timeout=20).status == 200
        return conftest.recv_until_close(reader)


def test_a_write_waiting_for_a_slow_reader_does_not_hold_the_others(start_server, tmp_path):
    srv = start_server(APP, "-k", "gevent", "-w", "1")
    # The second write() waits for this client, which reads nothing yet.
    data = _held_by_a_slow_reader(srv, b"/bigwrite", tmp_path / "written")
    assert len(data) > 16 << 20  # the head and the whole body


def test_a_response_waiting_for_a_slow_reader_stays_in_its_greenlet(start_server, tmp_path):
    srv = start_server(APP, "-k", "gevent", "-w", "1")
    # The iterable waits for this client, which reads nothing yet.
    data = _held_by_a_slow_reader(srv, b"/bigiter", tmp_path / "iterating")
    # Its threading.local (greenlet-local) value survived the waits.
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"xtag=mine"), data[-40:]


class gather_later:
    """One request on a thread of its own."""

    def __init__(self, srv, path, timeout=60.0):
        self.done = threading.Event()
        self.response = None

        def run():
            try:
                self.response = get(srv, path, timeout=timeout)
            except Exception as exc:  # the caller looks at the response
                self.response = exc
            finally:
                self.done.set()

        threading.Thread(target=run, daemon=True).start()


# -- what gevent users rely on ------------------------------------------------------

HOOKS = """
import os
from gevent import monkey

def post_fork(server, worker):
    os.environ["GEVENT_SEEN_POST_FORK"] = str(monkey.is_module_patched("socket"))

def post_worker_init(worker):
    os.environ["GEVENT_SEEN_POST_WORKER_INIT"] = str(monkey.is_module_patched("socket"))
"""


def test_the_app_and_the_hooks_run_patched(start_server, tmp_path):
    conf = tmp_path / "hooks.conf.py"
    conf.write_text(HOOKS)
    srv = start_server(APP, "-k", "gevent", "-c", str(conf))
    resp = get(srv, "/patched", timeout=30)
    assert resp.status == 200, resp
    doc = json.loads(resp.body)
    assert all(doc["modules"].values()), doc
    assert doc["post_fork"] == "True" and doc["post_worker_init"] == "True", doc
    assert doc["local_kept"] == "request", doc
    assert doc["children"] == [0, 1, 2], doc
    assert doc["subprocess"] == "sub"


def test_preload_warns_that_the_app_was_imported_before_patching(start_server):
    srv = start_server(APP, "-k", "gevent", "--preload")
    assert get(srv, "/hello").status == 200
    warnings = [m for _, lvl, m in log_records(srv) if lvl == "WARNING"]
    assert any(m.startswith("--preload with the gevent worker") for m in warnings), srv.log()


def test_a_request_that_never_yields_is_caught_by_timeout_with_its_traceback(start_server):
    srv = start_server(APP, "-k", "gevent", "-w", "1", "--timeout", "2")
    assert wait_for(lambda: len(booted_pids(srv)) == 1)
    stuck = booted_pids(srv)[0]
    spin = gather_later(srv, "/spin", timeout=60)
    assert wait_for(lambda: any(re.fullmatch(r"WORKER TIMEOUT \(pid:%d\)" % stuck, m) for m in messages(srv)),
                    timeout=30), srv.log()
    frame = re.compile(r'File "[^"]*gevent_apps\.py", line \d+ in spin_forever\b')
    assert wait_for(lambda: frame.search(srv.log()), timeout=20), srv.log()
    assert wait_for(lambda: len(booted_pids(srv)) == 2, timeout=30), srv.log()
    assert spin.done.wait(30)
    assert get(srv, "/hello").status == 200


def test_a_graceful_stop_lets_running_greenlets_finish(start_server, tmp_path):
    srv = start_server(APP, "-k", "gevent", "-w", "1", "--graceful-timeout", "20")
    marker = tmp_path / "inside"
    slow = gather_later(srv, "/slow?sleep=1.5&marker=%s" % marker)
    assert wait_for(marker.exists, timeout=20)
    srv.proc.send_signal(signal.SIGTERM)
    assert slow.done.wait(30)
    assert slow.response is not None and slow.response.status == 200, slow.response
    assert json.loads(slow.response.body) == {"slept": True}
    assert srv.proc.wait(timeout=30) == 0


def test_max_requests_retires_the_worker(start_server):
    srv = start_server(APP, "-k", "gevent", "-w", "1", "--max-requests", "3")
    pids = {json.loads(get(srv, "/hello").body)["pid"] for _ in range(7)}
    assert len(pids) >= 2, pids
    assert "Autorestarting worker after current request." in messages(srv)
