"""Static files: rsgi's own (--static-map), whitenoise under rsgi, nginx.

Builds a static tree in a temporary directory (a 4 KiB stylesheet with a
hashed name and a 200 KiB script with a .gz sibling), starts each server on
a loopback port with one worker, and runs wrk against two URLs per server
(the stylesheet, and the script with `Accept-Encoding: gzip`). nginx is
Debian's, with a configuration written to the temporary directory
(`sendfile on`, `gzip_static on`, `open_file_cache` off, like rsgi).
Servers are stopped by PID.

    python3 bench/static.py --python .venv/bin/python --duration 10
    python3 bench/static.py --servers rsgi,nginx --duration 2 --connections 16

Needs wrk and nginx (Debian packages) and whitenoise in the venv.
Numbers from a shared or loaded machine are only a rough comparison.
"""

import argparse
import gzip
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from common import add_server_args, exchange, free_port, server_args, wait_port

BENCH = Path(__file__).resolve().parent
CSS = "css/site.5af66c1b1797.css"
JS = "js/app.js"

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    types {{ text/css css; text/javascript js; }}
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location /static/ {{
            alias {root}/;
            gzip_static on;
            etag on;
        }}
    }}
}}
"""


def make_tree(root):
    (root / "css").mkdir(parents=True)
    (root / "js").mkdir()
    (root / CSS).write_bytes((b"body { margin: 0 auto; color: #123; }\n" * 108)[:4096])
    script = b"".join(b"function f%d(x) { return x * %d; }\n" % (i, i) for i in range(6000))[:200 * 1024]
    (root / JS).write_bytes(script)
    (root / (JS + ".gz")).write_bytes(gzip.compress(script, 9))


def servers(bindir, tmp, root, port):
    nginx = shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    b = "127.0.0.1:%d" % port
    out = {
        "rsgi": ([f"{bindir}/rsgi", "plain:hello", "-w", "1", "-b", b, "--static-map", f"/static={root}"], {}),
        "whitenoise+rsgi": ([f"{bindir}/rsgi", "static_whitenoise:app", "-w", "1", "-b", b],
                            {"STATIC_DIR": str(root)}),
    }
    if nginx:
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, root=root))
        out["nginx"] = ([nginx, "-c", str(conf), "-p", str(tmp)], {})
    return out


def wrk(port, path, duration, connections, headers=()):
    argv = ["wrk", "-t", "1", "-c", str(connections), "-d", "%ds" % duration, "--timeout", "5s"]
    for h in headers:
        argv += ["-H", h]
    argv.append("http://127.0.0.1:%d%s" % (port, path))
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return (float(rps.group(1)) if rps else 0.0), (int(errors.group(1)) if errors else 0)


def check(port, path, headers, expect_len):
    """One request first: the server answers with the expected body size."""
    extra = "".join("%s\r\n" % h for h in headers)
    data = exchange(port, ("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n" % (path, extra)).encode())
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200") or len(body) != expect_len:
        raise SystemExit("%s answered %r with %d body bytes" % (path, head[:200], len(body)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_args(ap, "rsgi,whitenoise+rsgi,nginx", python=sys.executable)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian package wrk)")
    bindir, names = server_args(args)
    tmp = Path(tempfile.mkdtemp(prefix="rsgi-static-bench-"))
    tmp.chmod(0o755)  # nginx's workers may run as another user
    root = tmp / "static"
    make_tree(root)
    cases = [
        ("css 4 KiB", "/static/" + CSS, (), (root / CSS).stat().st_size),
        ("js 200 KiB gzip", "/static/" + JS, ("Accept-Encoding: gzip",), (root / (JS + ".gz")).stat().st_size),
    ]
    print("%-18s %-18s %12s %8s" % ("server", "file", "requests/s", "errors"))
    try:
        for name in names:
            port = free_port()
            table = servers(bindir, tmp, root, port)
            if name not in table:
                print("%-18s (not available)" % name)
                continue
            argv, env = table[name]
            log = open(tmp / ("%s.log" % name.replace("+", "-")), "w")
            proc = subprocess.Popen(argv, cwd=str(BENCH / "apps"), env=dict(os.environ, **env), stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                if not wait_port(port, proc):
                    raise SystemExit("%s did not start; see %s" % (name, log.name))
                for label, path, headers, size in cases:
                    check(port, path, headers, size)
                    rps, errors = wrk(port, path, args.duration, args.connections, headers)
                    print("%-18s %-18s %12.0f %8d" % (name, label, rps, errors), flush=True)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
                log.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
