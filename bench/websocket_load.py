"""WebSocket load over raw sockets: echo round trips, and idle connections.

Round trips (run as its own process, pinned to the client core, by
bench/websocket.py; or by hand):

    python3 bench/websocket_load.py --port 8000 --connections 64 --duration 10

N upgraded connections each send one masked text frame and wait for its
echo, back to back, for D seconds, in one thread driven by epoll. The
client is kept cheap so that it is not what limits the figure: the frame is
built once, and a reply is only counted in bytes (the server's frame for a
payload under 126 bytes is 2 bytes of header plus the payload; anything
else is counted as an error). It prints one JSON line: round trips, round
trips per second, p50/p99 of a round trip, and the client's own CPU time
as a share of the wall time (near 100 % means the client, not the server,
was the limit) and its voluntary context switches per round trip.

Idle connections (imported by bench/websocket.py): `open_upgraded` opens
and upgrades N connections one after the other, `echo_each` exchanges one
message on every one of them, `still_open` counts those the server has not
closed. Loopback only, every socket call with a timeout.
"""

import argparse
import base64
import hashlib
import json
import resource
import select
import socket
import time

HOST = "127.0.0.1"
KEY = base64.b64encode(b"rsgi-bench-ws-k1").decode()  # any 16 bytes
ACCEPT = base64.b64encode(hashlib.sha1((KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode())
                          .digest()).decode()
MASK = b"\x1f\x2e\x3d\x4c"
PAYLOAD = 32  # bytes of text per message


class HandshakeError(OSError):
    """The server did not answer the upgrade with 101 and the right accept key."""


def masked_text_frame(payload):
    """A final text frame from a client (masked), for a payload under 126 bytes."""
    if len(payload) >= 126:
        raise ValueError("payload must be under 126 bytes")
    masked = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + MASK + masked


def reply_frame(payload):
    """The server's (unmasked) echo of `payload`, byte for byte."""
    return bytes([0x81, len(payload)]) + payload


def message(size=PAYLOAD):
    return (b"0123456789abcdef" * (size // 16 + 1))[:size]


def upgrade(port, path="/", timeout=10.0):
    """A connected, upgraded, blocking socket (raises OSError or HandshakeError)."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall((f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                raise HandshakeError("closed during the handshake")
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if lines[0].split()[1:2] != ["101"]:
            raise HandshakeError(f"upgrade answered {lines[0]!r}")
        accept = [v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])
                  if k.strip().lower() == "sec-websocket-accept"]
        if accept != [ACCEPT] or rest:
            raise HandshakeError(f"bad accept {accept} or {len(rest)} unexpected bytes")
        return s
    except BaseException:
        s.close()
        raise


def _recv_exactly(s, n):
    got = b""
    while len(got) < n:
        chunk = s.recv(n - len(got))
        if not chunk:
            raise ConnectionError("closed before the echo")
        got += chunk
    return got


# --- idle connections ---------------------------------------------------------


def open_upgraded(port, count, path="/", timeout=10.0):
    """Open and upgrade `count` connections; returns (sockets, errors as text)."""
    socks, errors = [], []
    for _ in range(count):
        try:
            socks.append(upgrade(port, path, timeout))
        except OSError as e:
            errors.append(f"{type(e).__name__}: {e}"[:120])
    return socks, errors


def echo_each(socks, timeout=10.0):
    """One message and its echo on every socket; returns how many came back right."""
    payload = message()
    frame, want = masked_text_frame(payload), reply_frame(payload)
    ok = 0
    for s in socks:
        try:
            s.settimeout(timeout)
            s.sendall(frame)
            ok += _recv_exactly(s, len(want)) == want
        except OSError:
            pass
    return ok


def still_open(socks):
    """How many of the sockets the server has neither closed nor written to."""
    alive = 0
    for s in socks:
        try:
            s.setblocking(False)  # with a timeout set, recv would wait out the timeout
            s.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    return alive


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


# --- round trips ----------------------------------------------------------------


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def round_trips(port, connections, duration, path="/", payload=PAYLOAD):
    """Echo round trips on `connections` sockets for `duration` seconds (see the module doc)."""
    body = message(payload)
    frame, want = masked_text_frame(body), len(reply_frame(body))
    socks, errors = open_upgraded(port, connections, path)
    if not socks:
        raise OSError(f"no connection upgraded: {errors[:3]}")
    ep = select.epoll()
    have, sent_at, by_fd = {}, {}, {}
    for s in socks:
        s.setblocking(False)
        fd = s.fileno()
        by_fd[fd], have[fd] = s, 0
        ep.register(fd, select.EPOLLIN)
    clock = time.perf_counter_ns
    latencies = []
    protocol_errors = closed = 0
    usage0, wall0 = resource.getrusage(resource.RUSAGE_SELF), clock()
    end = wall0 + int(duration * 1e9)
    for fd, s in by_fd.items():
        sent_at[fd] = clock()
        s.send(frame)
    active = len(by_fd)
    now = wall0
    while active and now < end:
        for fd, _ in ep.poll(0.5):
            s = by_fd[fd]
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                ep.unregister(fd)
                closed += 1
                active -= 1
                continue
            got = have[fd] + len(data)
            if got < want:
                have[fd] = got
                continue
            now = clock()
            if got > want:
                protocol_errors += 1
            latencies.append(now - sent_at[fd])
            have[fd] = 0
            if now < end:
                sent_at[fd] = now
                try:
                    s.send(frame)
                except OSError:  # closed by the server
                    ep.unregister(fd)
                    closed += 1
                    active -= 1
        now = clock()
    wall = (clock() - wall0) / 1e9
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    ep.close()
    close_all(socks)
    latencies.sort()
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    return {
        "connections": len(socks),
        "upgrade_errors": len(errors),
        "round_trips": len(latencies),
        "seconds": round(wall, 3),
        "rtps": len(latencies) / wall if wall > 0 else 0.0,
        "p50_ms": p50 / 1e6 if p50 is not None else None,
        "p99_ms": p99 / 1e6 if p99 is not None else None,
        "closed_by_server": closed,
        "protocol_errors": protocol_errors,
        "client_cpu_pct": 100.0 * cpu / wall if wall > 0 else None,
        # How often the client slept and was woken (by the server's echoes).
        "client_vcsw_per_rt": (usage1.ru_nvcsw - usage0.ru_nvcsw) / len(latencies) if latencies else None,
        "client_user_s": usage1.ru_utime - usage0.ru_utime,
        "client_system_s": usage1.ru_stime - usage0.ru_stime,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds (at most 120)")
    ap.add_argument("--payload", type=int, default=PAYLOAD, help="bytes per message (under 126)")
    args = ap.parse_args()
    result = round_trips(args.port, args.connections, min(args.duration, 120.0), args.path, args.payload)
    print("WS_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
