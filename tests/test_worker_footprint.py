"""What a worker loads beside the app: a WSGI worker does not pay for the
other kinds' machinery (asyncio for the ASGI worker, gevent for its own),
in memory or in import time."""

import urllib.request

HEAVY = "asyncio,gevent,uvloop"


def loaded(server, names):
    url = f"http://127.0.0.1:{server.port}/?{names}"
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
        return set(r.read().decode().split())


def test_a_sync_worker_imports_neither_asyncio_nor_gevent(start_server):
    server = start_server("basic:modules", "-w", "1")
    assert loaded(server, HEAVY) == set()


def test_a_threaded_worker_imports_neither_asyncio_nor_gevent(start_server):
    server = start_server("basic:modules", "-w", "1", "--threads", "4")
    assert loaded(server, HEAVY) == set()


def test_the_probe_sees_a_module_the_app_loaded(start_server):
    # The probe itself works: a module every worker has is reported.
    server = start_server("basic:modules", "-w", "1")
    assert loaded(server, "os,sys") == {"os", "sys"}


def test_threading_knows_the_workers_main_thread(start_server):
    # An app thread (here one of four executors) that imports `threading`
    # first must not become its main thread.
    server = start_server("basic:main_thread", "-w", "1", "--threads", "4")
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=10) as r:
        assert r.read() == b"elsewhere"
