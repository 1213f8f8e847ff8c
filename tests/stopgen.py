"""A bounded load generator for stopping a server under load: what happened
to every request when the server was told to stop?

    with StopLoad(("127.0.0.1", port), path="/slow?s=0.02", threads=32, keepalive=False) as load:
        ...                 # send the server TERM, wait for it to exit
    load.counts()           # {"served": n, "refused": n, "lost": n}

Each client thread sends GETs back to back, on a new connection per request
(``keepalive=False``) or on one kept-alive connection that it replaces when
the server answers ``Connection: close``. Every request ends as one of:

- served: a complete 200 response;
- refused: the connection was never made (refused, or the connect timed
  out): the client knows the server never had the request and may retry it
  elsewhere;
- lost: the connection was made (the kernel accepted it, or it had served
  earlier requests) and the request was sent, but it got no complete
  response (reset, EOF, timeout).

A request on a reused keep-alive connection that the server had closed
while idle, before this request was sent, is the usual keep-alive race
(RFC 9112 section 9.3.1): it is counted as ``idle_closed`` and, like a
browser or urllib3, sent again once on a new connection.

Bounded: every socket operation has a timeout, and the load stops itself
after ``duration`` seconds. Used by tests/test_graceful_stop.py and
bench/graceful_stop.py.
"""

import socket
import threading
import time

TIMEOUT = 5.0


class StopLoad:
    def __init__(self, addr, path="/", threads=32, keepalive=False, duration=30.0):
        self.addr = addr
        self.request = ("GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path).encode()
        self.nthreads = threads
        self.keepalive = keepalive
        self.deadline = time.monotonic() + duration
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._counts = {"served": 0, "refused": 0, "lost": 0, "idle_closed": 0}
        self._threads = []
        self.errors = []

    def __enter__(self):
        for i in range(self.nthreads):
            t = threading.Thread(target=self._run, daemon=True, name="stopgen-%d" % i)
            self._threads.append(t)
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(3 * TIMEOUT)

    def counts(self):
        with self._lock:
            return dict(self._counts)

    def served(self):
        return self.counts()["served"]

    def _count(self, what, error=None):
        with self._lock:
            self._counts[what] += 1
            if error is not None and len(self.errors) < 20:
                self.errors.append((what, error))

    def _connect(self):
        try:
            return socket.create_connection(self.addr, timeout=TIMEOUT)
        except OSError:
            return None

    def _exchange(self, sock):
        """Send the request and read one response; returns (ok, close)."""
        sock.sendall(self.request)
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = sock.recv(65536)
            if not data:
                raise ConnectionResetError("EOF before the response head (%d bytes)" % len(buf))
            buf += data
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and b"close" in value.lower():
                close = True
        while len(body) < length:
            data = sock.recv(65536)
            if not data:
                raise ConnectionResetError("EOF in the body")
            body += data
        return status == 200, close

    def _run(self):
        sock = None
        reused = False
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            if sock is None:
                sock = self._connect()
                reused = False
                if sock is None:
                    self._count("refused")
                    time.sleep(0.01)
                    continue
            try:
                ok, close = self._exchange(sock)
            except (OSError, ValueError, IndexError) as e:
                sock.close()
                sock = None
                if reused:
                    # The idle keep-alive race: send it again, once, on a
                    # new connection (a refusal then is a refusal).
                    self._count("idle_closed")
                    retry = self._connect()
                    if retry is None:
                        self._count("refused")
                        continue
                    try:
                        ok, close = self._exchange(retry)
                    except (OSError, ValueError, IndexError) as e2:
                        retry.close()
                        self._count("lost", repr(e2))
                        continue
                    sock, reused = retry, False
                else:
                    self._count("lost", repr(e))
                    continue
            self._count("served" if ok else "lost", None if ok else "non-200")
            if close or not self.keepalive:
                sock.close()
                sock = None
            else:
                reused = True
        if sock is not None:
            sock.close()
