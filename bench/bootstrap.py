"""Install what the benchmark needs: Debian tools, then a venv with rsgi and its peers.

Runs in the harness process, before any measurement. Every step is bounded and
isolated: a peer that fails to install is recorded as unavailable, never fatal.
Only rsgi's own build is required for a run to be worth anything, and even its
failure is recorded rather than raised, so the report says what happened.

`python3 bench/bootstrap.py` does only this (for the scripts beside run.py).
"""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV = BENCH / ".venv"
# rsgi's own build directory, apart from the developers' `target/`, so a
# benchmark build never waits on (or disturbs) a concurrent `cargo test`.
CARGO_TARGET = BENCH / ".build" / "target"

# Distribution name -> pip requirement. Each is installed on its own, so one
# failure (bjoern without libev, uWSGI without a compiler) costs only itself.
PEERS = {
    "gunicorn": "gunicorn",
    "granian": "granian>=2,<3",
    "bjoern": "bjoern",
    "uWSGI": "uwsgi",
    "waitress": "waitress",
    # ASGI peers (bench/asgi.py, bench/asgi_ws.py): uvicorn with its fast
    # parser and loop and both its WebSocket implementations (the
    # `standard` extra: httptools, uvloop, websockets), and the gunicorn
    # worker class that runs it. FastAPI is among the frameworks.
    "uvicorn": "uvicorn[standard]",
    "uvicorn-worker": "uvicorn-worker",
    # For gunicorn -k gevent and rsgi -k gevent (bench/gevent.py).
    "gevent": "gevent>=24.10.1",
}
FRAMEWORKS = {"Flask": "flask", "Django": "django", "FastAPI": "fastapi"}
TOOLS = {"matplotlib": "matplotlib"}

PIP_TIMEOUT = 20 * 60  # seconds; uWSGI and rsgi compile from source


def log(msg):
    print(f"[setup] {msg}", flush=True)


def venv_python():
    return VENV / "bin" / "python"


def venv_bin(name):
    return VENV / "bin" / name


def _tail(text, lines=12):
    return "\n".join(text.strip().splitlines()[-lines:])


class Apt:
    """apt-get install for a missing tool, with one `apt-get update` at most."""

    def __init__(self):
        self.updated = False
        self.usable = shutil.which("apt-get") is not None and os.geteuid() == 0

    @staticmethod
    def installed(package):
        r = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package],
            capture_output=True, text=True,
        )
        return r.returncode == 0 and "install ok installed" in r.stdout

    def install(self, packages):
        """Install the Debian packages not yet installed; return an error string or None."""
        missing = [p for p in packages if not self.installed(p)]
        if not missing:
            return None
        if not self.usable:
            return f"missing {' '.join(missing)} and apt-get is not usable (need root)"
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        if not self.updated:
            log("apt-get update")
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600)
            self.updated = True
        log(f"apt-get install {' '.join(missing)}")
        r = subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", *missing],
            env=env, capture_output=True, text=True, timeout=1200,
        )
        if r.returncode != 0:
            return f"apt-get install {' '.join(missing)} failed: {_tail(r.stderr or r.stdout, 4)}"
        return None


def pip(*args, env=None):
    cmd = [str(venv_python()), "-m", "pip", "install", "--disable-pip-version-check", *args]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        return f"pip install {' '.join(args)} timed out after {PIP_TIMEOUT} s"
    if r.returncode != 0:
        return _tail(r.stdout + "\n" + r.stderr)
    return None


def _python_headers_present():
    include = sysconfig.get_paths().get("include") or ""
    return os.path.exists(os.path.join(include, "Python.h"))


def setup(skip_install=False):
    """Prepare tools and the venv; return {name: {"ok": bool, "error": str|None}}."""
    status = {}
    apt = Apt()

    def record(name, error):
        status[name] = {"ok": error is None, "error": error}
        log(f"{name}: {'ok' if error is None else 'UNAVAILABLE: ' + error.splitlines()[-1]}")

    if skip_install:
        if not venv_python().exists():
            raise SystemExit(f"--skip-install: no venv at {VENV.relative_to(REPO)}; run without it once")
        log("--skip-install: using the existing venv as it is")
        return status

    # Debian tools: wrk drives the load; gcc and Python headers build uWSGI and
    # bjoern; libev-dev is bjoern's event loop.
    record("wrk", None if shutil.which("wrk") else apt.install(["wrk"]))
    if not shutil.which("taskset"):
        apt.install(["util-linux"])
    compiler_error = None if shutil.which("gcc") else apt.install(["gcc", "libc6-dev"])
    headers_error = None
    if not _python_headers_present():
        headers_error = apt.install(["python3-dev"])
        if headers_error is None and not _python_headers_present():
            headers_error = f"no Python.h for {sys.executable} (python3-dev is for Debian's python)"
    libev_error = apt.install(["libev-dev"])

    if not venv_python().exists():
        log(f"creating {VENV.relative_to(REPO)} with {sys.executable}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
        pip("--upgrade", "pip")

    for dist, req in {**FRAMEWORKS, **TOOLS}.items():
        log(f"pip install {req}")
        record(dist, pip(req))

    for dist, req in PEERS.items():
        log(f"pip install {req}")
        pre = None
        if dist == "bjoern":
            pre = libev_error or compiler_error or headers_error
        elif dist == "uWSGI":
            pre = compiler_error or headers_error
        record(dist, pre if pre else pip(req))

    # rsgi itself, built once from this checkout (release profile, via maturin).
    log("pip install <repository root> (rsgi, release build; this takes a few minutes)")
    env = dict(os.environ, CARGO_TARGET_DIR=str(CARGO_TARGET))
    record("rsgi", pip("--no-deps", "--force-reinstall", str(REPO), env=env))
    return status


def versions():
    """Installed versions in the venv, by distribution name (None if absent)."""
    names = ["rsgi", *PEERS, *FRAMEWORKS, *TOOLS]
    code = (
        "import json, importlib.metadata as m\n"
        "out = {}\n"
        f"for n in {names!r}:\n"
        "    try: out[n] = m.version(n)\n"
        "    except Exception: out[n] = None\n"
        "print(json.dumps(out))\n"
    )
    import json

    try:
        r = subprocess.run([str(venv_python()), "-c", code], capture_output=True, text=True, timeout=60)
        found = json.loads(r.stdout)
    except Exception:
        found = {n: None for n in names}
    try:
        r = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
        found["wrk"] = (r.stdout + r.stderr).split()[1]
    except Exception:
        found["wrk"] = None
    found["python"] = sysconfig.get_python_version() + " (" + sys.version.split()[0] + ")"
    return found


if __name__ == "__main__":
    failed = sorted(name for name, st in setup().items() if not st["ok"])
    print(f"[setup] unavailable: {', '.join(failed)}" if failed else "[setup] all installed", flush=True)
    sys.exit(1 if "rsgi" in failed else 0)
