"""What rsgi does so that configuration files written for gunicorn load
unchanged: gunicorn's ``sys.path`` rules, the ``gunicorn`` stand-in package
(``rsgi/_shims``) used only when the real one cannot be imported, reading a
configuration file the way gunicorn does, and mapping worker classes (names,
dotted paths, classes and subclasses) to the kind of worker that serves them.

Called from Rust in the master while the configuration is read.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import os
import sys
from types import ModuleType
from typing import Any, Optional, Sequence

SHIMS = os.path.join(os.path.dirname(os.path.realpath(__file__)), "_shims")

#: Worker classes by ``module.QualName``, with the kind rsgi gives them:
#: ``sync`` and ``gthread`` run rsgi's worker; ``legacy`` (WSGI workers that
#: are no longer maintained) run rsgi's worker with a warning; ``gevent``
#: runs rsgi's gevent worker; ``asgi`` is a kind rsgi does not have yet; ``foreign`` serves apps that are
#: neither WSGI nor ASGI.
KNOWN_WORKERS = {
    "gunicorn.workers.sync.SyncWorker": "sync",
    "gunicorn.workers.gthread.ThreadWorker": "gthread",
    "gunicorn.workers.ggevent.GeventWorker": "gevent",
    "gunicorn.workers.ggevent.GeventPyWSGIWorker": "gevent",
    "gunicorn.workers.base_async.AsyncWorker": "gevent",
    "gunicorn.workers.geventlet.EventletWorker": "legacy",
    "gunicorn.workers.gtornado.TornadoWorker": "legacy",
    "meinheld.gmeinheld.MeinheldWorker": "legacy",
    "bjoern.gunicorn.BjoernWorker": "legacy",
    "gunicorn.workers.gasgi.ASGIWorker": "asgi",
    "uvicorn.workers.UvicornWorker": "asgi",
    "uvicorn.workers.UvicornH11Worker": "asgi",
    "uvicorn_worker.UvicornWorker": "asgi",
    "uvicorn_worker.UvicornH11Worker": "asgi",
    "aiohttp.worker.GunicornWebWorker": "foreign",
    "aiohttp.worker.GunicornUVLoopWebWorker": "foreign",
    "aiohttp.worker.GunicornTokioWebWorker": "foreign",
}

#: gunicorn's short worker names (and eventlet, which older versions had).
SHORT_NAMES = {
    "sync": "gunicorn.workers.sync.SyncWorker",
    "gthread": "gunicorn.workers.gthread.ThreadWorker",
    "gevent": "gunicorn.workers.ggevent.GeventWorker",
    "gevent_wsgi": "gunicorn.workers.ggevent.GeventPyWSGIWorker",
    "gevent_pywsgi": "gunicorn.workers.ggevent.GeventPyWSGIWorker",
    "eventlet": "gunicorn.workers.geventlet.EventletWorker",
    "tornado": "gunicorn.workers.gtornado.TornadoWorker",
    "asgi": "gunicorn.workers.gasgi.ASGIWorker",
}

#: Entry points other packages register for gunicorn (``egg:DIST#NAME``).
EGG_NAMES = {
    ("meinheld", "gunicorn_worker"): "meinheld.gmeinheld.MeinheldWorker",
}

#: uvicorn ``CONFIG_KWARGS`` keys that map onto rsgi settings.
UVICORN_SETTINGS = {
    "loop": "asgi_loop",
    "lifespan": "asgi_lifespan",
    "root_path": "root_path",
    "forwarded_allow_ips": "forwarded_allow_ips",
}

#: Keys whose value is uvicorn's own default: nothing to say about them.
UVICORN_DEFAULTS = {"http": "auto", "loop": "auto", "ws": "auto"}


def gunicorn_is_real() -> bool:
    """True when an installed gunicorn (not rsgi's stand-in) is importable."""
    mod = sys.modules.get("gunicorn")
    if mod is not None:
        return not getattr(mod, "RSGI_SHIM", False)
    try:
        spec = importlib.util.find_spec("gunicorn")
    except (ImportError, ValueError):
        return False
    return spec is not None and not os.path.realpath(spec.origin or "").startswith(SHIMS)


class _UvicornWorkersFinder(importlib.abc.MetaPathFinder):
    """Answers ``uvicorn.workers`` with rsgi's stand-in, only when the
    installed uvicorn has no such module (it moved to ``uvicorn-worker``).
    Sits last on ``sys.meta_path``, so anything else is asked first."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Optional[ModuleType] = None) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname != "uvicorn.workers":
            return None
        origin = os.path.join(SHIMS, "_uvicorn_workers.py")
        return importlib.util.spec_from_file_location(fullname, origin)


def prepare(launch_dir: str) -> None:
    """Before the configuration file is read: gunicorn puts the directory it
    was started in first on ``sys.path`` (and keeps it there after
    ``--chdir``); rsgi's ``gunicorn`` stand-in goes last on ``sys.path``
    when no real gunicorn can be imported."""
    if launch_dir not in sys.path:
        sys.path.insert(0, launch_dir)
    # Installed wheels also name the directory in a .pth file, so scripts
    # that import gunicorn before rsgi find it too.
    if not gunicorn_is_real() and SHIMS not in map(os.path.realpath, sys.path):
        sys.path.append(SHIMS)
    if not any(isinstance(f, _UvicornWorkersFinder) for f in sys.meta_path):
        sys.meta_path.append(_UvicornWorkersFinder())


def apply_paths(chdir: str, pythonpath: Sequence[str]) -> None:
    """After every source is read: the ``--chdir`` directory, then each
    ``--pythonpath`` entry (relative to it), each put first unless already
    on ``sys.path``, in gunicorn's order (the last entry ends up first)."""
    chdir = os.path.normpath(chdir)
    if chdir not in sys.path:
        sys.path.insert(0, chdir)
    for entry in pythonpath:
        path = os.path.abspath(entry)
        if path not in sys.path:
            sys.path.insert(0, path)


def load_config_file(filename: str) -> dict[str, Any]:
    """Run a configuration file as gunicorn does: as module ``__config__``."""
    name = "__config__"
    if os.path.splitext(filename)[1] in (".py", ".pyc"):
        spec = importlib.util.spec_from_file_location(name, filename)
    else:
        loader = importlib.machinery.SourceFileLoader(name, filename)
        spec = importlib.util.spec_from_file_location(name, filename, loader=loader)
    if spec is None or spec.loader is None:
        raise ImportError("cannot read %s" % filename)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return vars(mod)


def load_config_module(module: str) -> dict[str, Any]:
    """``-c python:module.name``."""
    return vars(importlib.import_module(module))


def _class_key(cls: type) -> str:
    return "%s.%s" % (cls.__module__, cls.__qualname__)


def _import_dotted(uri: str) -> Any:
    module, _, attr = uri.rpartition(".")
    if not module:
        raise ImportError("%r is not a dotted path to a class" % uri)
    return getattr(importlib.import_module(module), attr)


def worker_kind(value: Any) -> tuple[str, str, dict[str, str], list[str]]:
    """Classify a ``worker_class`` value: ``(kind, name, settings, ignored)``.

    ``kind`` is one of ``sync``, ``gthread``, ``legacy``, ``gevent``,
    ``asgi``, ``foreign`` or ``custom`` (a worker of its own, which rsgi
    cannot run); ``name`` is how to name it in a message; ``settings`` are
    rsgi settings a uvicorn worker's ``CONFIG_KWARGS`` set, and ``ignored``
    the keys that map to none. Raises ImportError for a name that cannot be
    imported."""
    if inspect.isfunction(value) or inspect.ismethod(value):
        value = value()  # gunicorn accepts a function returning the class
    if isinstance(value, str):
        uri = value.strip()
        if uri.startswith("egg:"):
            dist, _, entry = uri[4:].partition("#")
            entry = entry or "sync"
            if dist == "gunicorn":
                uri = entry
            elif (dist, entry) in EGG_NAMES:
                uri = EGG_NAMES[(dist, entry)]
        uri = SHORT_NAMES.get(uri.lstrip("#"), uri)
        if uri in KNOWN_WORKERS:
            return KNOWN_WORKERS[uri], uri, {}, []
        if "." not in uri:
            raise ImportError("no worker class named %r" % value)
        value = _import_dotted(uri)
    if not inspect.isclass(value):
        raise ImportError("%r is not a class" % (value,))
    for base in inspect.getmro(value):
        kind = KNOWN_WORKERS.get(_class_key(base))
        if kind is None:
            continue
        settings: dict[str, str] = {}
        ignored: list[str] = []
        if kind == "asgi":
            settings, ignored = uvicorn_settings(getattr(value, "CONFIG_KWARGS", None) or {})
        name = _class_key(value)
        if base is not value:
            name = "%s, a %s subclass" % (name, _class_key(base))
        return kind, name, settings, ignored
    return "custom", _class_key(value), {}, []


def uvicorn_settings(kwargs: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Map a uvicorn worker's ``CONFIG_KWARGS`` onto rsgi settings (as the
    text a command-line flag would give), and list the keys that have no
    rsgi equivalent."""
    settings: dict[str, str] = {}
    ignored: list[str] = []
    for key, val in sorted(kwargs.items()):
        if key in UVICORN_SETTINGS:
            if key == "loop" and val == "none":
                val = "auto"
            if isinstance(val, (list, tuple)):
                val = ",".join(str(v) for v in val)
            settings[UVICORN_SETTINGS[key]] = str(val).lower() if key in ("loop", "lifespan") else str(val)
        elif key == "proxy_headers":
            if not val:
                settings["forwarded_allow_ips"] = ""  # trust no front-end
        elif UVICORN_DEFAULTS.get(key) == val:
            continue
        else:
            ignored.append("%s=%r" % (key, val))
    return settings, ignored


DEFAULT_LOGGERS = ("", "simple", "gunicorn.glogging.Logger", "egg:gunicorn#simple",
                   "gunicorn.instrument.statsd.Statsd")
#: What a configuration may change on gunicorn's own Logger class
#: (``glogging.Logger.error_fmt = ...``), with gunicorn's values.
_LOGGER_FORMATS = {
    "error_fmt": r"%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
    "datefmt": r"[%Y-%m-%d %H:%M:%S %z]",
    "access_fmt": "%(message)s",
}
_LOGGER_METHODS = ("setup", "access", "atoms", "now", "critical", "error", "warning", "info", "debug",
                   "exception", "log")


def _patched_default_logger() -> Optional[type]:
    """gunicorn's Logger class when the configuration changed it in place
    (its formats or methods): then it is a custom logger all the same."""
    mod = sys.modules.get("gunicorn.glogging")
    cls = getattr(mod, "Logger", None)
    if cls is None:
        return None
    for name, default in _LOGGER_FORMATS.items():
        if getattr(cls, name, default) != default:
            return cls
    for name in _LOGGER_METHODS:
        if getattr(getattr(cls, name, None), "__module__", "gunicorn.glogging") != "gunicorn.glogging":
            return cls
    return None


def is_default_logger(value: Any) -> bool:
    """True when ``logger_class`` names gunicorn's own logger, unchanged
    (rsgi's error and access logs then do its work, statsd included)."""
    if isinstance(value, str):
        default = value.strip() in DEFAULT_LOGGERS
    else:
        default = inspect.isclass(value) and _class_key(value) in DEFAULT_LOGGERS
    return default and _patched_default_logger() is None


def logger_class(value: Any) -> type:
    """Resolve a custom ``logger_class`` (a class or a dotted path)."""
    if inspect.isfunction(value) or inspect.ismethod(value):
        value = value()
    if isinstance(value, str) and value.strip() in DEFAULT_LOGGERS:
        patched = _patched_default_logger()
        if patched is not None:
            return patched
    if isinstance(value, str):
        value = _import_dotted(value.strip())
    if not inspect.isclass(value):
        raise ImportError("%r is not a class" % (value,))
    return value


def server_header() -> Optional[tuple[str, str]]:
    """``(Server header, SERVER_SOFTWARE)`` when the configuration changed
    ``SERVER_SOFTWARE`` or ``SERVER`` in ``gunicorn`` (or in
    ``gunicorn.http.wsgi``, where gunicorn reads them); None otherwise."""
    mod = sys.modules.get("gunicorn")
    if mod is None:
        return None
    default_software = "gunicorn/%s" % getattr(mod, "__version__", "")
    places = [mod, sys.modules.get("gunicorn.http.wsgi")]
    for place in places:
        software = getattr(place, "SERVER_SOFTWARE", None)
        if isinstance(software, str) and software != default_software:
            return software, software
    for place in places:
        server = getattr(place, "SERVER", None)
        if isinstance(server, str) and server != "gunicorn":
            return server, server
    return None
