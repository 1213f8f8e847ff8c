"""rsgi: a pre-fork WSGI HTTP server written in Rust, with gunicorn's interface.

Run it as ``rsgi module:app`` or ``python -m rsgi module:app``, or from
Python with ``rsgi.run(app, bind="127.0.0.1:8000", workers=2)``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

from rsgi._rsgi import ErrorStream, FileWrapper, Input, __version__, main as _main, serve as _serve

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from rsgi._settings import Settings

__all__ = ["ErrorStream", "FileWrapper", "Input", "__version__", "run"]


def run(app_or_uri: Union[str, Any, Sequence[str], None] = None, /, **settings: Unpack[Settings]) -> int:
    """Serve a WSGI app and return the exit status once the server stops.

    ``app_or_uri`` is the app object itself or a ``"module:callable"``
    string; ``settings`` are gunicorn's setting names with the values a
    configuration file would give them (``bind="127.0.0.1:8000"``,
    ``workers=2``, ``post_fork=fn``...). Nothing else is read: no command
    line, no ``GUNICORN_CMD_ARGS`` and no ``gunicorn.conf.py`` (unless
    ``config=`` names one). An app object is shared by every worker (it
    exists before they fork), as with ``preload_app``.

    Called with a list of strings (or nothing), runs the command line
    instead: ``rsgi.run(["rsgi", "app:app", "-w", "2"])``.
    """
    if app_or_uri is None or isinstance(app_or_uri, (list, tuple)):
        argv: Optional[Sequence[str]] = app_or_uri
        return _main(list(sys.argv if argv is None else argv))
    return _serve(app_or_uri, dict(settings))
