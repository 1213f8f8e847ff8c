"""The deployment files, run as written: the Django example's Dockerfile (its
pip and CMD lines in a fresh venv, since there may be no Docker engine) and
the systemd unit pair in deploy/ (checked by `systemd-analyze verify`, then
started as systemd would start them, through systemd-socket-activate)."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests

import conftest
import test_packaging
from _rawhttp import RawConn, wait_for

ROOT = conftest.ROOT
DJANGO_DIR = ROOT / "examples" / "django_project"
DEPLOY = ROOT / "deploy"
pytestmark = pytest.mark.skipif(conftest.SERVER_KIND == "gunicorn", reason="rsgi's deployment files")


def dockerfile():
    """(ENV dict, RUN command strings, CMD argv) of the Django Dockerfile,
    with continuation lines joined."""
    text = (DJANGO_DIR / "Dockerfile").read_text()
    text = re.sub(r"\\\n\s*", " ", text)
    env, runs, cmd = {}, [], None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("ENV "):
            for key, value in re.findall(r"(\w+)=(\S+)", line[4:]):
                env[key] = value
        elif line.startswith("RUN "):
            runs.append(line[4:])
        elif line.startswith("CMD "):
            cmd = json.loads(line[4:])
    return env, runs, cmd


def test_dockerfile_replaces_gunicorn_with_rsgi():
    env, runs, cmd = dockerfile()
    assert cmd[:2] == ["rsgi", "myproject.wsgi:application"]
    assert env["DJANGO_SETTINGS_MODULE"] == "myproject.settings"
    assert any(r.startswith("pip install") for r in runs)
    requirements = (DJANGO_DIR / "requirements.txt").read_text().split()
    assert any(r.startswith("rsgi") for r in requirements)


def test_dockerfile_commands_in_a_venv(tmp_path):
    """The image's build and start, minus Docker: the project copied as
    `COPY . .` would, the wheel placed in wheels/, the RUN pip line run in a
    fresh venv (no Rust on PATH), and the CMD started on a loopback port."""
    wheel = test_packaging.wheel_for(test_packaging.CURRENT_TAG)
    if wheel is None:
        if test_packaging.REQUIRE_WHEEL:
            pytest.fail("no wheel for this interpreter in %s" % test_packaging.WHEEL_DIR)
        pytest.skip("no wheel built (run scripts/build-wheels)")
    env_vars, runs, cmd = dockerfile()
    app_dir = tmp_path / "app"
    shutil.copytree(DJANGO_DIR, app_dir, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(wheel, app_dir / "wheels")
    env = test_packaging.toolchain_free_env()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], env=env, check=True, timeout=180)
    env["PATH"] = str(venv / "bin") + os.pathsep + env["PATH"]
    env.update(env_vars)
    for run in runs:
        if run.startswith("useradd"):
            continue  # the image's own user; not this machine's business
        # /tmp/wheels in the image is wheels/ of the build context here.
        run = run.replace("/tmp/wheels", str(app_dir / "wheels"))
        res = subprocess.run(["sh", "-ec", run], cwd=str(app_dir), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, timeout=600)
        assert res.returncode == 0, res.stdout
    # The venv's rsgi is the wheel's, not a build from source.
    installed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "show", "-f", "rsgi"], env=env,
                               stdout=subprocess.PIPE, text=True, timeout=60).stdout
    assert "Version: " + test_packaging.project_version() in installed
    port = conftest.free_port()
    argv = [("127.0.0.1:%d" % port if a == "0.0.0.0:8000" else a) for a in cmd]
    assert "127.0.0.1:%d" % port in argv
    log = tempfile.NamedTemporaryFile(prefix="rsgi-docker-log-", suffix=".txt", delete=False)
    proc = subprocess.Popen(argv, cwd=str(app_dir), env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    srv = conftest.Server(proc, port, log.name)
    http = requests.Session()
    http.trust_env = False
    try:
        assert conftest.wait_for_tcp("127.0.0.1", port, proc), srv.log()
        resp = http.get(srv.url + "/", timeout=10)
        assert "<h1>Hello from Django!</h1>" in resp.text
        page = http.get(srv.url + "/contact", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        resp = http.post(srv.url + "/contact", timeout=10, data={
            "name": "Docker", "email": "d@example.com", "message": "hi", "csrfmiddlewaretoken": token})
        assert "Thanks, Docker: 2 characters received." in resp.text
        # The collectstatic RUN line's output, served by the CMD's --static-map.
        styled = http.get(srv.url + "/styled", timeout=10)
        href = re.search(r'href="(/static/demo/site\.[0-9a-f]{12}\.css)"', styled.text).group(1)
        css = http.get(srv.url + href, timeout=10)
        assert css.status_code == 200 and css.headers["Cache-Control"].endswith("immutable")
        # --access-logfile - : access lines on stdout.
        assert wait_for(lambda: '"POST /contact HTTP/1.1" 200' in srv.log(), timeout=10), srv.log()
    finally:
        http.close()
        assert srv.stop() == 0, srv.log()
        os.unlink(log.name)


# -- systemd units -----------------------------------------------------------------

def unit_values(path):
    values = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


def localized_units(tmp_path, socket_path):
    """The unit pair with this machine's rsgi, project, user and a socket
    in the test's directory."""
    import grp
    import pwd
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    rsgi = conftest.server_executable()
    service = (DEPLOY / "rsgi.service").read_text()
    service = service.replace("/srv/myproject/.venv/bin/rsgi", rsgi)
    service = service.replace("WorkingDirectory=/srv/myproject", "WorkingDirectory=%s" % DJANGO_DIR)
    service = service.replace("User=app", "User=" + user).replace("Group=app", "Group=" + group)
    sock = (DEPLOY / "rsgi.socket").read_text().replace("/run/rsgi/rsgi.sock", str(socket_path))
    sock = re.sub(r"SocketUser=.*", "SocketUser=" + user, sock)
    sock = re.sub(r"SocketGroup=.*", "SocketGroup=" + group, sock)
    (tmp_path / "rsgi.service").write_text(service)
    (tmp_path / "rsgi.socket").write_text(sock)
    return tmp_path / "rsgi.socket", tmp_path / "rsgi.service"


def test_systemd_units_verify(tmp_path):
    analyze = conftest.require_tool("systemd-analyze", "systemd")
    sock, service = localized_units(tmp_path, tmp_path / "rsgi.sock")
    res = subprocess.run([analyze, "verify", str(sock), str(service)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=120)
    assert res.returncode == 0, res.stdout
    assert res.stdout.strip() == "", res.stdout
    # And a broken unit is reported: the check is not a no-op.
    (tmp_path / "rsgi.service").write_text(service.read_text().replace("ExecStart=", "ExecStart=/nonexistent/"))
    res = subprocess.run([analyze, "verify", str(sock), str(service)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=120)
    assert res.returncode != 0


def test_systemd_units_serve_django(tmp_path):
    """Start the service the way its socket unit would: the socket's
    ListenStream and FileDescriptorName, the service's Environment,
    WorkingDirectory and ExecStart; then HUP (ExecReload) and TERM
    (KillMode=mixed sends it to the master alone)."""
    activate = conftest.require_tool("systemd-socket-activate", "systemd")
    path = tmp_path / "run" / "rsgi.sock"
    path.parent.mkdir()
    sock_unit, service_unit = localized_units(tmp_path, path)
    sock, service = unit_values(sock_unit), unit_values(service_unit)
    argv = [activate]
    for listen in sock["ListenStream"]:
        argv += ["-l", listen]
    argv.append("--fdname=" + ":".join(sock["FileDescriptorName"]))
    for assignment in service.get("Environment", []):
        argv += ["-E", assignment]
    argv += ["-E", "PATH=" + os.environ.get("PATH", "")]
    argv += service["ExecStart"][0].split()
    log = tempfile.NamedTemporaryFile(prefix="rsgi-unit-log-", suffix=".txt", delete=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "RSGI_", "GUNICORN_", "DJANGO_"))}
    env.pop("WEB_CONCURRENCY", None)
    proc = subprocess.Popen(argv, cwd=service["WorkingDirectory"][0], env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    srv = conftest.Server(proc, None, log.name, unix_path=str(path))

    def get(url_path):
        with RawConn(srv.connect(timeout=30), timeout=30) as conn:
            conn.send(("GET %s HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n" % url_path).encode())
            return conn.read_response()
    try:
        assert wait_for(lambda: path.exists() or proc.poll() is not None, timeout=30), srv.log()
        resp = get("/")  # starts rsgi, which answers it
        assert resp.status == 200 and b"Hello from Django!" in resp.body, srv.log()
        assert "Socket activation: fd 3 (http) from systemd" in srv.log()
        # --workers 4 from ExecStart: each worker logs its boot itself, so
        # the one that answered may have been first.
        assert wait_for(lambda: srv.log().count("Booting worker with pid") >= 4, timeout=60), srv.log()
        assert srv.log().count("Booting worker with pid") == 4, srv.log()
        os.kill(proc.pid, signal.SIGHUP)  # ExecReload
        assert wait_for(lambda: srv.log().count("Booting worker with pid") >= 8, timeout=60), srv.log()
        assert get("/api/query?a=1").status == 200
        assert srv.stop() == 0
        assert path.exists()  # the socket is systemd's
    finally:
        srv.stop(signal.SIGKILL)
        os.unlink(log.name)
