"""The access log, as gunicorn writes it: --access-logfile (a file, or '-'
for stdout), gunicorn's default --access-logformat, every atom
(h l u t r m U q H s B b f a T D M L p, {header}i, {header}o, {var}e), the
same settings from a config file, and USR1 reopening the file after a rename.

One server with a format holding every atom serves a fixed set of requests
(module fixture); each atom then has its own small test against those lines,
so a wrong atom fails alone.
"""

import base64
import os
import re
import signal
import subprocess
import tempfile
import threading
from datetime import datetime, timezone

import pytest

import conftest
from _rawhttp import RawConn, get, wait_for
from test_master import booted_pids, wait_booted

GUNICORN = conftest.SERVER_KIND == "gunicorn"
CONFIG = conftest.APPS / "config"
APP = "cfgapp:routes"

# Every atom as NAME=VALUE, separated by '|'; the label header identifies
# which request a line belongs to.
ATOMS = "h l u t r m U q H s B b f a T D M L p".split()
EXTRA = {
    "label": "{x-label}i",
    "xff": "{x-forwarded-for}i",
    "host": "{HOST}i",
    "missing_in": "{x-missing}i",
    "ctype": "{content-type}o",
    "xout": "{x-out}o",
    "xout_mixed": "{X-Out}o",
    "missing_out": "{x-missing}o",
    "remote_port": "{remote_port}e",
    "remote_addr": "{remote_addr}e",
    "path_info": "{path_info}e",
    "server_port": "{server_port}e",
    "raw_uri": "{raw_uri}e",
    "http_x_label": "{http_x_label}e",
    "scheme": "{wsgi.url_scheme}e",
    "missing_env": "{no_such_var}e",
}
FORMAT = "|".join(["%s=%%(%s)s" % (a, a) for a in ATOMS]
                  + ["%s=%%(%s)s" % (k, v) for k, v in EXTRA.items()])

DEFAULT_LINE = re.compile(
    r'^(\S+) - (\S+) \[(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] '
    r'"([^"]*)" (\d{3}) (\S+) "([^"]*)" "([^"]*)"$')

BASIC_ALICE = "Basic " + base64.b64encode(b"alice:secret").decode()

# label -> (raw request lines before the blank line, body)
REQUESTS = {
    "main": (["GET /a/b?x=1&y=2 HTTP/1.1", "Host: 127.0.0.1", "Authorization: " + BASIC_ALICE,
              "X-Forwarded-For: 1.2.3.4", "Referer: http://ref.example/page",
              "User-Agent: agent/1.0"], b""),
    "slow": (["GET /slow HTTP/1.1", "Host: 127.0.0.1"], b""),
    "stream": (["GET /stream HTTP/1.1", "Host: 127.0.0.1"], b""),
    "head": (["HEAD / HTTP/1.1", "Host: 127.0.0.1"], b""),
    "empty": (["GET /empty HTTP/1.1", "Host: 127.0.0.1"], b""),
    "bearer": (["GET /missing HTTP/1.1", "Host: 127.0.0.1", "Authorization: Bearer tok"], b""),
    "http10": (["GET /a HTTP/1.0", "Host: 127.0.0.1"], b""),
    "boom": (["GET /boom HTTP/1.1", "Host: 127.0.0.1"], b""),
    "post": (["POST /form HTTP/1.1", "Host: 127.0.0.1", "Content-Type: text/plain",
              "Content-Length: 5"], b"hello"),
}


def send(server, label, lines, body):
    """One request on its own connection; returns the client's port."""
    head = lines + ["X-Label: " + label]
    if lines[0].endswith("HTTP/1.1"):
        head.append("Connection: close")
    data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
    with RawConn(server.connect()) as conn:
        port = conn.sock.getsockname()[1]
        conn.send(data)
        resp = conn.read_response(method=lines[0].split()[0])
    return port, resp


def parse(line):
    out = {}
    for part in line.split("|"):
        key, _, value = part.partition("=")
        out[key] = value
    return out


@pytest.fixture(scope="module")
def atoms():
    """{label: (parsed line, client port, response)} plus "_worker" and "_now"."""
    log_dir = tempfile.mkdtemp(prefix="rsgi-access-")
    access = os.path.join(log_dir, "access.log")
    srv = conftest.spawn(APP, "-w", "1", "--access-logfile", access,
                         "--access-logformat", FORMAT, cwd=CONFIG)
    try:
        assert wait_booted(srv, 1)
        sent = {}
        for label, (lines, body) in REQUESTS.items():
            sent[label] = send(srv, label, lines, body)
        now = datetime.now(timezone.utc)
        assert wait_for(lambda: os.path.exists(access) and
                        len(open(access).read().splitlines()) >= len(REQUESTS)), srv.log()
        worker = booted_pids(srv)[0]
    finally:
        srv.stop()
        os.unlink(srv.log_path)
    with open(access) as f:
        lines = [parse(l) for l in f.read().splitlines() if l]
    by_label = {l["label"]: l for l in lines}
    result = {label: (by_label.get(label), port, resp) for label, (port, resp) in sent.items()}
    result["_worker"] = worker
    result["_port"] = srv.port
    result["_now"] = now
    return result


def line(atoms, label):
    parsed = atoms[label][0]
    assert parsed is not None, "no access-log line for request %r" % label
    return parsed


@pytest.mark.parametrize("label,atom,expected", [
    ("main", "h", "127.0.0.1"),
    ("main", "l", "-"),
    ("main", "u", "alice"),
    ("slow", "u", "-"),
    ("bearer", "u", "-"),
    ("main", "r", "GET /a/b?x=1&y=2 HTTP/1.1"),
    ("post", "r", "POST /form HTTP/1.1"),
    ("main", "m", "GET"),
    ("post", "m", "POST"),
    ("head", "m", "HEAD"),
    ("main", "U", "/a/b"),
    ("main", "q", "x=1&y=2"),
    ("slow", "q", ""),
    ("main", "H", "HTTP/1.1"),
    ("http10", "H", "HTTP/1.0"),
    ("http10", "r", "GET /a HTTP/1.0"),
    ("main", "s", "200"),
    ("stream", "s", "201"),
    ("empty", "s", "204"),
    ("bearer", "s", "404"),
    # The app raised: the error page's status is logged.
    ("boom", "s", "500"),
    ("boom", "r", "GET /boom HTTP/1.1"),
    ("main", "B", "11"),
    ("main", "b", "11"),
    ("stream", "B", "7"),
    ("stream", "b", "7"),
    ("head", "B", "0"),
    ("empty", "B", "0"),
    ("bearer", "B", "4"),
    ("main", "f", "http://ref.example/page"),
    ("slow", "f", "-"),
    ("main", "a", "agent/1.0"),
    ("slow", "a", "-"),
    ("main", "xff", "1.2.3.4"),
    ("slow", "xff", "-"),
    ("main", "host", "127.0.0.1"),
    ("main", "missing_in", "-"),
    ("main", "ctype", "text/plain"),
    ("stream", "ctype", "text/x-stream; charset=utf-8"),
    ("main", "xout", "outval"),
    ("main", "xout_mixed", "outval"),
    ("stream", "xout", "-"),
    ("main", "missing_out", "-"),
    ("main", "remote_addr", "127.0.0.1"),
    ("main", "path_info", "/a/b"),
    ("main", "raw_uri", "/a/b?x=1&y=2"),
    ("main", "http_x_label", "main"),
    ("main", "scheme", "http"),
    ("main", "missing_env", "-"),
])
def test_atom(atoms, label, atom, expected):
    assert line(atoms, label)[atom] == expected


def test_atom_p_is_the_worker_pid(atoms):
    assert line(atoms, "main")["p"] == "<%d>" % atoms["_worker"]


def test_environ_atom_remote_port_is_the_client_port(atoms):
    parsed, port, _ = atoms["main"]
    assert parsed is not None
    assert parsed["remote_port"] == str(port)


def test_environ_atom_server_port_is_the_listening_port(atoms):
    assert line(atoms, "main")["server_port"] == str(atoms["_port"])


def test_environ_atoms_in_upper_case(start_server, tmp_path):
    """gunicorn matches {var}e case-insensitively; CGI names are upper case."""
    access = tmp_path / "access.log"
    srv = start_server(APP, "--access-logfile", str(access), "--access-logformat",
                       "%({REMOTE_ADDR}e)s %({PATH_INFO}e)s %({HTTP_X_A}e)s %({Server_Port}e)s",
                       cwd=CONFIG)
    assert get(srv, "/upper", headers=[("X-A", "v")]).status == 200
    assert wait_for(lambda: access.exists() and access.read_text().strip())
    assert access.read_text().splitlines() == ["127.0.0.1 /upper v %d" % srv.port]


def test_atom_t_is_the_request_time_in_apache_format(atoms):
    value = line(atoms, "main")["t"]
    assert re.fullmatch(r"\[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]", value), value
    when = datetime.strptime(value, "[%d/%b/%Y:%H:%M:%S %z]")
    assert abs((atoms["_now"] - when).total_seconds()) < 60


def test_duration_atoms_agree_and_measure_the_request(atoms):
    fast = line(atoms, "main")
    slow = line(atoms, "slow")
    for parsed in (fast, slow):
        micros = int(parsed["D"])
        assert int(parsed["M"]) == micros // 1000
        assert parsed["L"] == "%d.%06d" % divmod(micros, 1000000)
        assert int(parsed["T"]) == micros // 1000000
    assert int(slow["D"]) >= 300000  # /slow sleeps 0.3 s
    assert int(fast["D"]) < int(slow["D"])


# -- the default format, the file, stdout ------------------------------------

def test_default_format_is_gunicorns(start_server, tmp_path):
    access = tmp_path / "access.log"
    srv = start_server(APP, "--access-logfile", str(access), cwd=CONFIG)
    resp = get(srv, "/a/b?x=1", headers=[("User-Agent", "agent/1.0"),
                                         ("Referer", "http://ref.example/")])
    assert resp.status == 200
    assert wait_for(lambda: access.exists() and access.read_text().strip())
    (text,) = access.read_text().splitlines()
    m = DEFAULT_LINE.match(text)
    assert m, text
    assert m.group(1) == "127.0.0.1"
    assert m.group(2) == "-"
    assert m.group(4) == "GET /a/b?x=1 HTTP/1.1"
    assert m.group(5) == "200"
    assert m.group(6) == "11"
    assert m.group(7) == "http://ref.example/"
    assert m.group(8) == "agent/1.0"


def test_no_access_log_by_default(start_server):
    srv = start_server(APP, cwd=CONFIG)
    assert get(srv, "/marker-path").status == 200
    # Once the server has stopped, everything it would write is written.
    assert srv.stop() == 0
    assert "Shutting down: Master" in srv.log()
    assert "/marker-path" not in srv.log()


def test_access_log_and_format_from_the_config_file(start_server, tmp_path):
    access = tmp_path / "access.log"
    conf = tmp_path / "access.conf.py"
    conf.write_text("accesslog = %r\naccess_log_format = 'CONF %%(m)s %%(U)s %%(s)s'\n"
                    % str(access))
    srv = start_server(APP, "-c", str(conf), cwd=CONFIG)
    assert get(srv, "/from-conf").status == 200
    assert wait_for(lambda: access.exists() and access.read_text().strip())
    assert access.read_text().splitlines() == ["CONF GET /from-conf 200"]


def test_dash_writes_access_lines_to_stdout_and_nothing_else(tmp_path):
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    port = conftest.free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for key in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "RSGI_CMD_ARGS"):
        env.pop(key, None)
    with open(out, "w") as stdout, open(err, "w") as stderr:
        proc = subprocess.Popen(
            [conftest.server_executable(), APP, "-b", "127.0.0.1:%d" % port,
             "--access-logfile", "-", "--access-logformat", "ACCESS %(U)s"],
            cwd=str(CONFIG), env=env, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
    srv = conftest.Server(proc, port, str(err))
    try:
        assert conftest.wait_for_tcp("127.0.0.1", port, proc), err.read_text()
        assert get(srv, "/to-stdout").status == 200
        assert wait_for(lambda: "ACCESS /to-stdout" in out.read_text()), out.read_text()
    finally:
        srv.stop()
    assert out.read_text().splitlines() == ["ACCESS /to-stdout"]
    assert "ACCESS" not in err.read_text()
    assert "Booting worker" in err.read_text()


def test_h_is_the_client_address_given_by_the_proxy_protocol(start_server, tmp_path):
    access = tmp_path / "access.log"
    srv = start_server(APP, "--proxy-protocol", "v1", "--access-logfile", str(access),
                       "--access-logformat", "%(h)s %({REMOTE_ADDR}e)s %(U)s", cwd=CONFIG)
    with RawConn(srv.connect()) as conn:
        conn.send(b"PROXY TCP4 192.0.2.1 198.51.100.2 5555 80\r\n"
                  b"GET /proxied HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert conn.read_response().status == 200
    assert wait_for(lambda: access.exists() and access.read_text().strip())
    assert access.read_text().splitlines() == ["192.0.2.1 192.0.2.1 /proxied"]


# -- USR1 ------------------------------------------------------------------------

def test_usr1_reopens_the_access_log_after_a_rename(start_server, tmp_path):
    access = tmp_path / "access.log"
    rotated = tmp_path / "access.log.1"
    srv = start_server(APP, "-w", "2", "--access-logfile", str(access),
                       "--access-logformat", "%(U)s %(p)s", cwd=CONFIG)
    assert wait_booted(srv, 2)
    workers = booted_pids(srv)
    assert get(srv, "/before").status == 200
    assert wait_for(lambda: access.exists() and "/before " in access.read_text())
    os.rename(access, rotated)
    # Until USR1, the workers still write to the renamed file.
    assert get(srv, "/after-rename").status == 200
    assert wait_for(lambda: "/after-rename " in rotated.read_text())
    srv.proc.send_signal(signal.SIGUSR1)
    assert wait_for(access.exists), srv.log()

    def pids_in(path):
        return {l.split()[1] for l in path.read_text().splitlines() if l.strip()}

    def both_workers_write_the_new_file():
        # Two requests at once: while /slow holds one worker, the other
        # answers, so each worker logs at least one line per round.
        threads = [threading.Thread(target=get, args=(srv, "/slow")) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=15)
        return pids_in(access) >= {"<%d>" % w for w in workers}
    assert wait_for(both_workers_write_the_new_file, timeout=30, interval=0), access.read_text()

    # From now on every request is logged in the new file only.
    last = ["/last-%d" % i for i in range(6)]
    for path in last:
        assert get(srv, path).status == 200
    new_paths = lambda: [l.split()[0] for l in access.read_text().splitlines()]
    assert wait_for(lambda: all(p in new_paths() for p in last)), access.read_text()
    old_paths = [l.split()[0] for l in rotated.read_text().splitlines()]
    assert old_paths[:2] == ["/before", "/after-rename"]
    assert not set(last) & set(old_paths)
    assert "/before" not in new_paths()
    assert srv.proc.poll() is None
