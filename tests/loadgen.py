"""A bounded load generator for the supervision tests.

    with Load(server, threads=4, duration=20) as load:
        ...                      # kill, HUP, TTIN, USR2 the server meanwhile
        load.mark("kill")        # remember when something happened
    assert not load.failures(ignore_inflight_at=load.marks["kill"], pids={victim})

Each client thread keeps one HTTP/1.1 keep-alive connection and issues GETs on
it back to back, reconnecting after ``per_connection`` requests (so the load
spreads over the workers and exercises accept) or when the server closes.
Every request has a socket timeout, and the whole load stops itself after
``duration`` seconds or ``count`` requests, whichever comes first, even if
the test forgets to stop it.

Every request is recorded as a :class:`Result`: start and end (monotonic
clock), status, the X-Worker-Pid that answered, the error if any, and the
worker that answered the previous request on the same connection
(``conn_pid``), so a failure can be put down to a worker the test killed.

Retrying.  A keep-alive connection that the server closes while idle races
with the client's next request: the client may send it just as the close
happens, and it then sees EOF or a reset before a single response byte.
RFC 9112 §9.3.1 lets a client retry an idempotent request in exactly that
case, and browsers and urllib3 do, so this client retries it once on a new
connection and counts it in ``Result.retried``.  Nothing else is retried: a
new connection that is refused, reset or closed without a response, a
timeout, a truncated response or a non-200 status is a failure.
"""

import threading
import time

DEFAULT_TIMEOUT = 10.0  # socket timeout of every connect, send and recv
MAX_DURATION = 120.0    # a load never runs longer than this, whatever is asked


class Result:
    """One request as the client saw it."""

    __slots__ = ("thread", "start", "end", "status", "pid", "error", "conn_pid",
                 "retried", "reused")

    def __init__(self, thread, start):
        self.thread = thread
        self.start = start       # time.monotonic() when the request began
        self.end = None          # time.monotonic() when it was answered or failed
        self.status = None       # HTTP status, None if no response was read
        self.pid = None          # X-Worker-Pid of the response, as an int
        self.error = None        # repr() of the exception, None on a response
        self.conn_pid = None     # worker that answered before on this connection
        self.retried = False     # sent again after an idle keep-alive close
        self.reused = False      # sent on a connection that had served a request

    @property
    def ok(self):
        return self.error is None and self.status == 200

    def __repr__(self):
        what = self.error if self.error is not None else "status=%s" % self.status
        return "<Result t%d %.3f-%.3f %s pid=%s conn_pid=%s%s>" % (
            self.thread, self.start, self.end or -1, what, self.pid, self.conn_pid,
            " retried" if self.retried else "")


class IdleClose(Exception):
    """The server closed a reused connection before sending any response byte."""


class _Conn:
    """A client socket with a read buffer and a minimal response reader."""

    def __init__(self, server, timeout):
        self.sock = server.connect(timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.served = 0      # responses read on this connection
        self.last_pid = None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _recv(self):
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        self.buf += data
        return bool(data)

    def request(self, path, close):
        """Send one GET and read the response: (status, headers, body).

        Raises IdleClose when a reused connection ends with nothing read."""
        head = "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % path
        if close:
            head += "Connection: close\r\n"
        try:
            self.sock.sendall((head + "\r\n").encode("latin-1"))
        except (BrokenPipeError, ConnectionResetError):
            if self.served:
                raise IdleClose("send failed on an idle keep-alive connection")
            raise
        while b"\r\n\r\n" not in self.buf:
            if not self._recv():
                if self.served and not self.buf:
                    raise IdleClose("closed before any response byte")
                raise ConnectionError("EOF inside the response head: %r" % self.buf[:100])
        raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
        elif "content-length" in headers:
            body = self._read_exact(int(headers["content-length"]))
        else:
            while self._recv():
                pass
            body, self.buf = self.buf, b""
            headers["connection"] = "close"
        self.served += 1
        return status, headers, body

    def _read_exact(self, n):
        while len(self.buf) < n:
            if not self._recv():
                raise ConnectionError("EOF in body after %d of %d bytes" % (len(self.buf), n))
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _read_line(self):
        while b"\r\n" not in self.buf:
            if not self._recv():
                raise ConnectionError("EOF in chunked body")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read_chunked(self):
        parts = []
        while True:
            size = int(self._read_line().split(b";")[0], 16)
            if size == 0:
                while self._read_line():
                    pass  # trailers
                return b"".join(parts)
            parts.append(self._read_exact(size))
            self._read_exact(2)


class Load:
    """N client threads of keep-alive GETs against ``server`` (a conftest.Server).

    ``duration``: seconds until the load stops itself (at most MAX_DURATION).
    ``count``: total requests after which it stops (None: no limit).
    ``per_connection``: requests per connection before the client closes it.
    ``pause``: seconds each thread sleeps between requests.
    ``retry_idle_close``: retry once after an idle keep-alive close (see the
    module doc); False counts those as failures too.
    """

    def __init__(self, server, path="/", threads=4, duration=30.0, count=None,
                 timeout=DEFAULT_TIMEOUT, per_connection=20, pause=0.0,
                 retry_idle_close=True):
        self.server = server
        self.path = path
        self.nthreads = threads
        self.duration = min(duration, MAX_DURATION)
        self.count = count
        self.timeout = timeout
        self.per_connection = per_connection
        self.pause = pause
        self.retry_idle_close = retry_idle_close
        self.results = []
        self.marks = {}
        self._lock = threading.Lock()
        self._issued = 0
        self._stop = threading.Event()
        self._threads = []
        self._deadline = None

    # -- control ------------------------------------------------------------

    def start(self):
        self._deadline = time.monotonic() + self.duration
        for i in range(self.nthreads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True,
                                 name="loadgen-%d" % i)
            self._threads.append(t)
            t.start()
        return self

    def stop(self):
        """Stop issuing requests and wait for those in flight (bounded)."""
        self._stop.set()
        join_deadline = time.monotonic() + 2 * self.timeout + 5
        for t in self._threads:
            t.join(timeout=max(0.1, join_deadline - time.monotonic()))
        stuck = [t.name for t in self._threads if t.is_alive()]
        assert not stuck, "load threads still running: %s" % stuck

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def mark(self, name):
        """Record the current time under ``name``; returns it."""
        self.marks[name] = time.monotonic()
        return self.marks[name]

    def wait_ok(self, n, timeout=30.0, since=None):
        """Wait until ``n`` successful requests have been answered (after
        ``since``, a monotonic time, if given); True if they were."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                got = sum(1 for r in self.results
                          if r.ok and (since is None or r.start >= since))
            if got >= n:
                return True
            if self._stop.is_set() or not any(t.is_alive() for t in self._threads):
                return False
            time.sleep(0.05)
        return False

    @property
    def running(self):
        return any(t.is_alive() for t in self._threads)

    # -- the client threads ---------------------------------------------------

    def _take_ticket(self):
        with self._lock:
            if self.count is not None and self._issued >= self.count:
                return False
            self._issued += 1
            return True

    def _run(self, index):
        conn = None
        try:
            while not self._stop.is_set() and time.monotonic() < self._deadline:
                if not self._take_ticket():
                    break
                result, conn = self._one(index, conn)
                with self._lock:
                    self.results.append(result)
                if self.pause:
                    time.sleep(self.pause)
        finally:
            if conn is not None:
                conn.close()

    def _one(self, index, conn):
        """Issue one request (plus at most one retry); returns (Result, conn)."""
        result = Result(index, time.monotonic())
        for attempt in (0, 1):
            try:
                if conn is None:
                    conn = _Conn(self.server, self.timeout)
                if attempt == 0:  # a retry keeps the first connection's story
                    result.reused = conn.served > 0
                    result.conn_pid = conn.last_pid
                close = conn.served + 1 >= self.per_connection
                status, headers, _ = conn.request(self.path, close)
            except IdleClose as exc:
                conn.close()
                conn = None
                if attempt == 0 and self.retry_idle_close:
                    result.retried = True
                    continue
                result.error = repr(exc)
                break
            except (OSError, ConnectionError, ValueError, IndexError) as exc:
                result.error = repr(exc)
                if conn is not None:
                    conn.close()
                    conn = None
                break
            result.status = status
            pid = headers.get("x-worker-pid")
            result.pid = int(pid) if pid and pid.isdigit() else None
            conn.last_pid = result.pid
            if close or headers.get("connection", "").lower() == "close":
                conn.close()
                conn = None
            break
        result.end = time.monotonic()
        return result, conn

    # -- what happened ------------------------------------------------------

    def ok(self):
        return [r for r in self.results if r.ok]

    def failures(self, pids=(), ignore_inflight_at=None, slack=0.5):
        """Failed requests, less those that were in flight inside a worker the
        test killed: a failure is ignored when it was under way at
        ``ignore_inflight_at`` (a monotonic time, give or take ``slack``
        seconds) and its connection had been answered by one of ``pids`` or
        by no one yet (a first request on a fresh connection)."""
        out = []
        for r in self.results:
            if r.ok:
                continue
            if ignore_inflight_at is not None:
                inflight = (r.start <= ignore_inflight_at + slack
                            and r.end >= ignore_inflight_at - slack)
                suspect = r.conn_pid is None or r.conn_pid in pids
                if inflight and suspect:
                    continue
            out.append(r)
        return out

    def retried(self):
        return [r for r in self.results if r.retried]

    def pids(self, since=None):
        """The set of worker PIDs that answered (after ``since``, if given)."""
        return {r.pid for r in self.results
                if r.ok and r.pid is not None and (since is None or r.start >= since)}

    def summary(self):
        ok = len(self.ok())
        return "%d requests, %d ok, %d failed, %d retried after an idle close, pids %s" % (
            len(self.results), ok, len(self.results) - ok, len(self.retried()),
            sorted(self.pids()))
