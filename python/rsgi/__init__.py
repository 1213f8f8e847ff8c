"""rsgi: a pre-fork WSGI HTTP server written in Rust, with gunicorn's interface.

Run it as ``rsgi module:app`` or ``python -m rsgi module:app``.
"""

from rsgi._rsgi import ErrorStream, FileWrapper, Input, __version__, main as _main

__all__ = ["ErrorStream", "FileWrapper", "Input", "__version__", "run"]


def run(argv=None):
    """Run the server with ``argv`` (defaults to ``sys.argv``); returns the exit status."""
    import sys

    return _main(list(sys.argv if argv is None else argv))
