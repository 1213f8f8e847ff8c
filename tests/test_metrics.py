"""Prometheus metrics (--metrics-bind): the master serves the text format
from the scoreboard on its own loopback port, scraped here over a real
socket and read with prometheus_client's own parser.  Counters move with
real requests (2xx, a malformed request's 4xx, an app that raises's 5xx),
survive worker restarts, and restarts are counted by reason.  Also the
listen queue (TCP_INFO) and --enable-backlog-metric's statsd histogram.
rsgi only: gunicorn has no metrics endpoint.
"""

import os
import signal
import socket
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

import conftest
from _rawhttp import RawConn, get, request, wait_for
from test_config import free_bind, run_server_cli
from test_master import wait_booted
from test_signals import _usr2_new_master, children, leftovers, read_pid, wait_gone  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.skipif(conftest.SERVER_KIND == "gunicorn", reason="rsgi's own endpoint"),
    pytest.mark.timeout(120),
]

APP = "metrics_apps:router"


class Scraper:
    def __init__(self, port):
        self.port = port

    def raw(self, path="/metrics", method="GET"):
        with RawConn(socket.create_connection(("127.0.0.1", self.port), timeout=10), timeout=10) as conn:
            conn.send(("%s %s HTTP/1.1\r\nHost: x\r\n\r\n" % (method, path)).encode())
            return conn.read_response(method=method)

    def families(self):
        resp = self.raw()
        assert resp.status == 200, resp
        assert resp.header("Content-Type").startswith("text/plain; version=0.0.4"), resp
        return {f.name: f for f in text_string_to_metric_families(resp.body.decode())}

    def value(self, sample, **labels):
        """The value of one sample (by sample name and labels)."""
        for family in self.families().values():
            for s in family.samples:
                if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
        raise KeyError((sample, labels))

    def wait(self, predicate, timeout=30):
        """Scrape until ``predicate(scraper)`` holds (bounded)."""
        return wait_for(lambda: predicate(self), timeout=timeout)


@pytest.fixture
def metrics_server(start_server):
    def _start(*args, **kwargs):
        port = conftest.free_port()
        srv = start_server(APP, "--metrics-bind", "127.0.0.1:%d" % port, *args, **kwargs)
        scraper = Scraper(port)
        assert wait_for(lambda: _reachable(port)), srv.log()
        return srv, scraper
    return _start


def _reachable(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_the_exposition_has_help_and_type_for_every_family(metrics_server):
    srv, m = metrics_server("-w", "2", "--threads", "3")
    assert m.wait(lambda m: m.value("rsgi_executors", state="idle") == 6), srv.log()
    families = m.families()
    expected = {
        "rsgi_requests": "counter",
        "rsgi_request_duration_seconds": "histogram",
        "rsgi_received_bytes": "counter",
        "rsgi_sent_bytes": "counter",
        "rsgi_requests_in_flight": "gauge",
        "rsgi_connections": "gauge",
        "rsgi_executors": "gauge",
        "rsgi_workers": "gauge",
        "rsgi_worker_restarts": "counter",
        "rsgi_listen_queue": "gauge",
        "rsgi_listen_queue_limit": "gauge",
    }
    for name, kind in expected.items():
        assert name in families, sorted(families)
        assert families[name].type == kind, name
        assert families[name].documentation, name
    assert m.value("rsgi_workers") == 2
    assert m.value("rsgi_executors", state="busy") == 0
    for reason in ("crash", "timeout", "max_requests", "memory"):
        assert m.value("rsgi_worker_restarts_total", reason=reason) == 0
    resp = m.raw("/")
    assert resp.status == 404
    assert m.raw("/metrics", method="HEAD").body == b""
    assert m.raw("/metrics", method="POST").status == 405


def test_counters_move_with_real_requests(metrics_server):
    srv, m = metrics_server("-w", "2")
    assert m.value("rsgi_requests_total", **{"class": "2xx"}) == 0
    for _ in range(3):
        assert get(srv, "/bytes?n=1000").status == 200
    bad = request(srv, b"NOT A REQUEST\r\n\r\n")
    assert bad.status == 400
    assert get(srv, "/raise").status == 500

    def counted(m):
        c = lambda cls: m.value("rsgi_requests_total", **{"class": cls})
        return c("2xx") == 3 and c("4xx") == 1 and c("5xx") == 1
    assert m.wait(counted), m.raw().body.decode()
    assert m.value("rsgi_requests_total", **{"class": "1xx"}) == 0
    assert m.value("rsgi_requests_total", **{"class": "3xx"}) == 0
    # The histogram counts the four requests the app answered.
    assert m.value("rsgi_request_duration_seconds_count") == 4
    assert m.value("rsgi_request_duration_seconds_bucket", le="+Inf") == 4
    assert m.value("rsgi_request_duration_seconds_sum") > 0
    buckets = [s.value for s in m.families()["rsgi_request_duration_seconds"].samples
               if s.name.endswith("_bucket")]
    assert buckets == sorted(buckets)
    assert m.value("rsgi_sent_bytes_total") >= 3 * 1000
    assert m.value("rsgi_received_bytes_total") >= len(b"NOT A REQUEST\r\n\r\n")


def test_in_flight_requests_and_busy_executors(metrics_server, tmp_path):
    started = tmp_path / "started"
    srv, m = metrics_server("-w", "1", "--threads", "2", "--graceful-timeout", "1",
                            env={"STARTED_FILE": str(started)})
    conn = srv.connect()
    try:
        conn.sendall(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_for(lambda: started.exists() and started.read_text().strip())
        assert m.wait(lambda m: m.value("rsgi_requests_in_flight") == 1
                      and m.value("rsgi_executors", state="busy") == 1
                      and m.value("rsgi_executors", state="idle") == 1
                      and m.value("rsgi_connections", state="open") == 1), m.raw().body.decode()
    finally:
        conn.close()


def test_a_response_paused_for_a_slow_client_is_counted_parked(metrics_server):
    srv, m = metrics_server("-w", "1", "--threads", "2")
    reader = srv.connect()
    try:
        reader.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")  # and read nothing
        assert m.wait(lambda m: m.value("rsgi_connections", state="parked") == 1
                      and m.value("rsgi_requests_in_flight") == 1), m.raw().body.decode()
        # The paused response holds no executor.
        assert m.value("rsgi_executors", state="busy") == 0
    finally:
        reader.close()
    assert m.wait(lambda m: m.value("rsgi_connections", state="parked") == 0)


def _worker_pid(srv):
    return int(get(srv, "/").header("X-Worker-Pid"))


def test_restarts_by_reason_and_totals_across_restarts(metrics_server, tmp_path):
    started = tmp_path / "started"
    srv, m = metrics_server("-w", "1", "--max-requests", "3", "--timeout", "2",
                            env={"STARTED_FILE": str(started)})
    restarts = lambda reason: m.value("rsgi_worker_restarts_total", reason=reason)
    # --max-requests: the third request retires the worker.
    first = _worker_pid(srv)
    for _ in range(2):
        assert get(srv, "/").status == 200
    assert m.wait(lambda m: restarts("max_requests") == 1), srv.log()
    assert wait_for(lambda: _worker_pid(srv) != first)
    # The retired worker's requests are kept in the totals.
    assert m.wait(lambda m: m.value("rsgi_requests_total", **{"class": "2xx"}) >= 4)
    # A crash: the worker is killed by a signal the master did not send.
    victim = _worker_pid(srv)
    os.kill(victim, signal.SIGKILL)
    assert m.wait(lambda m: restarts("crash") == 1), srv.log()
    # --timeout: a request held past it gets the worker killed.
    conn = srv.connect()
    try:
        conn.sendall(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        assert m.wait(lambda m: restarts("timeout") == 1, timeout=60), srv.log()
    finally:
        conn.close()
    assert m.value("rsgi_requests_total", **{"class": "2xx"}) >= 4
    assert restarts("max_requests") >= 1 and restarts("crash") == 1 and restarts("timeout") == 1
    assert restarts("memory") == 0


def test_a_memory_restart_is_counted(metrics_server):
    srv, m = metrics_server("-w", "1", "--max-worker-memory", "100")
    pids = []

    def replaced():  # each /grow keeps 20 MiB more, until another worker answers
        pids.append(get(srv, "/grow").header("X-Worker-Pid"))
        return pids[-1] != pids[0]
    # Growing stops once the first worker has retired, so its replacement
    # (one /grow, 20 MiB) never reaches the ceiling: exactly one restart,
    # whenever the master gets to count it.
    assert wait_for(replaced, timeout=60), srv.log()
    assert m.wait(lambda m: m.value("rsgi_worker_restarts_total", reason="memory") == 1, timeout=60), srv.log()
    assert m.value("rsgi_worker_restarts_total", reason="crash") == 0


def test_listen_queue_and_its_limit(metrics_server):
    srv, m = metrics_server("--backlog", "64")
    listener = "http://127.0.0.1:%d" % srv.port
    assert m.value("rsgi_listen_queue_limit", listener=listener) == 64
    assert m.value("rsgi_listen_queue", listener=listener) >= 0


def test_a_held_worker_leaves_new_clients_queued_and_counted(metrics_server, tmp_path):
    # One worker, one executor, held by a request: the next client waits,
    # in the listener's accept queue (the worker stops accepting when all
    # its executors are held; that is what happens here) or, had the worker
    # taken it, as a connection waiting for an executor.
    started = tmp_path / "started"
    srv, m = metrics_server("-w", "1", "--threads", "1", "--graceful-timeout", "1",
                            env={"STARTED_FILE": str(started)})
    listener = "http://127.0.0.1:%d" % srv.port
    holder = srv.connect()
    waiter = None
    try:
        holder.sendall(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_for(lambda: started.exists() and started.read_text().strip())
        waiter = srv.connect()
        waiter.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert m.wait(lambda m: m.value("rsgi_listen_queue", listener=listener)
                      + m.value("rsgi_connections", state="waiting") == 1), m.raw().body.decode()
        assert m.value("rsgi_executors", state="busy") == 1
    finally:
        holder.close()
        if waiter:
            waiter.close()


def test_backlog_metric_goes_to_statsd(start_server):
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(0.5)
    try:
        start_server(APP, "--statsd-host", "127.0.0.1:%d" % sink.getsockname()[1], "--enable-backlog-metric")
        deadline = time.monotonic() + 20
        seen = None
        while time.monotonic() < deadline and seen is None:
            try:
                msg = sink.recv(2048).decode()
            except socket.timeout:
                continue
            if msg.startswith("gunicorn.backlog:"):
                seen = msg
        assert seen is not None
        assert seen.endswith("|h"), seen
        assert int(seen.split(":", 1)[1].split("|")[0]) >= 0
    finally:
        sink.close()


@pytest.mark.parametrize("spec", ["nonsense", "unix:/tmp/metrics.sock", "in-use"])
def test_a_bad_metrics_bind_is_one_clear_line(spec):
    holder = None
    if spec == "in-use":
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        spec = "127.0.0.1:%d" % holder.getsockname()[1]
    try:
        res = run_server_cli(APP, "-b", free_bind(), "--metrics-bind", spec, cwd=conftest.APPS, timeout=30)
    finally:
        if holder:
            holder.close()
    assert res.returncode == 1, res
    # As a bad -b: one error line (after the start-up line), naming both.
    errors = [l for l in res.stderr.splitlines() if "[ERROR]" in l]
    assert len(errors) == 1, res.stderr
    assert "--metrics-bind" in errors[0] and spec in errors[0], res.stderr
    assert "Traceback" not in res.stderr
    assert "Booting worker" not in res.stderr


def test_concurrent_scrapes_and_a_stalled_scraper(metrics_server):
    srv, m = metrics_server()
    stalled = socket.create_connection(("127.0.0.1", m.port), timeout=10)
    stalled.sendall(b"GET /metr")  # never finishes its request
    try:
        results = []
        threads = [threading.Thread(target=lambda: results.append(m.raw().status)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == [200] * 4
        assert get(srv, "/").status == 200
    finally:
        stalled.close()


def test_a_usr2_master_serves_the_same_metrics_address(metrics_server, tmp_path, leftovers):
    pidfile = str(tmp_path / "app.pid")
    srv, m = metrics_server("-p", pidfile)
    assert wait_booted(srv, 1)
    old_workers = children(srv.pid)
    new_master = _usr2_new_master(srv, pidfile, old_workers, leftovers)
    # The new master binds the metrics address too (SO_REUSEPORT).
    assert wait_for(lambda: "Serving metrics at: http://127.0.0.1:%d/metrics" % m.port
                    in srv.log().split("[%d]" % new_master, 1)[-1]), srv.log()
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=40) == 0
    assert wait_for(lambda: read_pid(pidfile) == new_master, timeout=30), srv.log()
    # Scrapes now reach the promoted master alone.
    assert m.value("rsgi_workers") == 1
    assert m.value("rsgi_requests_total", **{"class": "2xx"}) == 0
    assert get(srv, "/").status == 200
    assert m.wait(lambda m: m.value("rsgi_requests_total", **{"class": "2xx"}) == 1)
    os.kill(new_master, signal.SIGTERM)
    assert wait_gone([new_master], timeout=40)
