"""Packaging: `--version` names the build's versions; the manylinux wheels
from scripts/build-wheels install into a fresh venv with no Rust toolchain on
PATH and serve the examples; the extras are declared.

scripts/test builds the wheel of the interpreter running the suite and sets
RSGI_REQUIRE_WHEEL=1, so in CI that wheel's absence is a failure, not a skip.
Wheels for other interpreters are tested when present in $RSGI_WHEEL_DIR
(default dist/) and their python3.X is on PATH: run scripts/build-wheels
first to test them all.
"""

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
import requests

import conftest

ROOT = conftest.ROOT
WHEEL_DIR = Path(os.environ.get("RSGI_WHEEL_DIR") or ROOT / "dist")
REQUIRE_WHEEL = os.environ.get("RSGI_REQUIRE_WHEEL") == "1"
CURRENT_TAG = "cp%d%d" % sys.version_info[:2]
pytestmark = pytest.mark.skipif(conftest.SERVER_KIND == "gunicorn", reason="rsgi's packaging")


def project_version():
    text = (ROOT / "Cargo.toml").read_text()
    return re.search(r'^version = "([^"]+)"', text, re.M).group(1)


def locked_pyo3_version():
    text = (ROOT / "Cargo.lock").read_text()
    return re.search(r'\[\[package\]\]\nname = "pyo3"\nversion = "([^"]+)"', text).group(1)


def version_pattern(py_version):
    return "rsgi (version %s), pyo3 %s, CPython %s" % (project_version(), locked_pyo3_version(), py_version)


# -- --version of the installed build -------------------------------------------

@pytest.mark.parametrize("argv", [["{rsgi}", "--version"], ["{python}", "-m", "rsgi", "--version"],
                                  ["{rsgi}", "-v"]])
def test_version_names_rsgi_pyo3_and_python(argv):
    argv = [a.format(rsgi=conftest.server_executable(), python=sys.executable) for a in argv]
    res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == version_pattern("%d.%d.%d" % sys.version_info[:3])


# -- wheels ----------------------------------------------------------------------

def wheel_for(tag):
    found = sorted(WHEEL_DIR.glob("rsgi-%s-%s-%s-*.whl" % (project_version(), tag, tag)))
    return found[-1] if found else None


def wheel_tags():
    tags = {CURRENT_TAG}
    for path in WHEEL_DIR.glob("rsgi-*-cp3*-cp3*-*.whl"):
        tags.add(path.name.split("-")[2])
    return sorted(tags)


def interpreter_for(tag):
    """The interpreter a wheel is for, found as scripts/build-wheels finds
    it: python3.X on PATH if it runs, else the newest 3.X pyenv has."""
    if tag == CURRENT_TAG:
        return sys.executable
    minor = tag[3:]
    py = shutil.which("python3.%s" % minor)
    if py and subprocess.run([py, "-c", "import sys"], capture_output=True, timeout=60).returncode == 0:
        return py
    pyenv = shutil.which("pyenv")
    if pyenv:
        listed = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True, timeout=60).stdout
        versions = [v for v in listed.split() if re.fullmatch(r"3\.%s\.\d+" % minor, v)]
        if versions:
            newest = max(versions, key=lambda v: [int(p) for p in v.split(".")])
            prefix = subprocess.run([pyenv, "prefix", newest], capture_output=True, text=True,
                                    timeout=60).stdout.strip()
            candidate = os.path.join(prefix, "bin", "python3.%s" % minor)
            if os.access(candidate, os.X_OK):
                return candidate
    return None


def toolchain_free_env():
    """This environment minus every PATH entry holding cargo or rustc, and
    minus the variables that point at a Rust toolchain."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CARGO", "RUSTUP", "RUSTC", "PYO3", "VIRTUAL_ENV", "LISTEN_",
                                "RSGI_", "GUNICORN_"))}
    dirs = [d for d in env.get("PATH", "").split(os.pathsep)
            if d and not any(os.path.exists(os.path.join(d, tool)) for tool in ("cargo", "rustc"))]
    env["PATH"] = os.pathsep.join(dirs)
    env.pop("WEB_CONCURRENCY", None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    assert shutil.which("cargo", path=env["PATH"]) is None
    assert shutil.which("rustc", path=env["PATH"]) is None
    return env


@pytest.fixture
def http():
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()


@pytest.mark.parametrize("tag", wheel_tags())
def test_wheel_in_a_fresh_venv_without_rust(tag, tmp_path, http):
    wheel = wheel_for(tag)
    if wheel is None:
        if REQUIRE_WHEEL and tag == CURRENT_TAG:
            pytest.fail("no %s wheel in %s: scripts/build-wheels did not run" % (tag, WHEEL_DIR))
        pytest.skip("no %s wheel in %s (run scripts/build-wheels)" % (tag, WHEEL_DIR))
    python = interpreter_for(tag)
    if python is None:
        pytest.skip("python%s.%s is not on PATH" % (tag[2], tag[3:]))
    # manylinux2014 = manylinux_2_17: the wheel runs on glibc 2.17 and later.
    assert "manylinux_2_17_x86_64" in wheel.name or "manylinux2014" in wheel.name, wheel.name

    env = toolchain_free_env()
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], env=env, check=True, timeout=180)
    bin_dir = venv / "bin"
    env["PATH"] = str(bin_dir) + os.pathsep + env["PATH"]
    res = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--no-index", "--only-binary=:all:",
                          "--no-deps", str(wheel)], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=180)
    assert res.returncode == 0, res.stdout

    # The extension comes from the venv, and reports the venv's interpreter.
    probe = subprocess.run(
        [str(bin_dir / "python"), "-c",
         "import platform, rsgi._rsgi as m; print(m.__file__); print(platform.python_version())"],
        cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    assert probe.returncode == 0, probe.stdout
    module_file, py_version = probe.stdout.split()
    assert module_file.startswith(str(venv)), module_file
    for argv in ([str(bin_dir / "rsgi"), "--version"], [str(bin_dir / "python"), "-m", "rsgi", "--version"]):
        out = subprocess.run(argv, cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, timeout=60)
        assert out.stdout.strip() == version_pattern(py_version), out.stdout

    # Serve the examples that need nothing but rsgi, from the repo root.
    port = conftest.free_port()
    log = tempfile.NamedTemporaryFile(prefix="rsgi-wheel-log-", suffix=".txt", delete=False)
    proc = subprocess.Popen([str(bin_dir / "rsgi"), "examples.hello:app", "-b", "127.0.0.1:%d" % port,
                             "-w", "2", "--threads", "2"],
                            cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    srv = conftest.Server(proc, port, log.name)
    try:
        assert conftest.wait_for_tcp("127.0.0.1", port, proc), srv.log()
        resp = http.get(srv.url + "/", timeout=10)
        assert (resp.status_code, resp.content) == (200, b"Hello, World!")
    finally:
        assert srv.stop() == 0, srv.log()
    for app, check in [("examples.streaming:app", "stream"), ("examples.uploads:app", "upload")]:
        port = conftest.free_port()
        proc = subprocess.Popen([str(bin_dir / "rsgi"), app, "-b", "127.0.0.1:%d" % port],
                                cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        srv = conftest.Server(proc, port, log.name)
        try:
            assert conftest.wait_for_tcp("127.0.0.1", port, proc), srv.log()
            if check == "stream":
                resp = http.get(srv.url + "/?n=3&delay=0.01", timeout=10)
                assert resp.text == "line 0\nline 1\nline 2\n"
            else:
                data = os.urandom(300_000)
                resp = http.post(srv.url + "/", data=data, timeout=30)
                assert resp.json() == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        finally:
            assert srv.stop() == 0, srv.log()
    os.unlink(log.name)


def test_wheel_declares_the_extras():
    wheel = wheel_for(CURRENT_TAG)
    if wheel is None:
        if REQUIRE_WHEEL:
            pytest.fail("no %s wheel in %s" % (CURRENT_TAG, WHEEL_DIR))
        pytest.skip("no wheel built (run scripts/build-wheels)")
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = z.read(name).decode()
    extras = set(re.findall(r"^Provides-Extra: (\S+)$", metadata, re.M))
    assert {"gevent", "gthread", "setproctitle", "paste"} <= extras
    requires = re.findall(r"^Requires-Dist: (.+)$", metadata, re.M)
    def required_by(extra):
        return [r.split()[0].lower() for r in requires
                if re.search(r"extra == ['\"]%s['\"]" % extra, r)]
    assert required_by("gevent") == ["gevent>=24.10.1"], requires
    assert required_by("paste") == ["pastedeploy>=3"], requires
    assert required_by("gthread") == required_by("setproctitle") == []
    # Nothing is required without an extra: rsgi has no Python dependencies.
    assert all("extra ==" in r for r in requires), requires
