"""Put on PYTHONPATH by the tests to run rsgi as if gunicorn were not
installed: the installed gunicorn package is not found by imports, while
anything else (rsgi's own stand-in included) is."""

import importlib.machinery
import os
import sys

_HIDDEN = "gunicorn"


class _Hide(importlib.machinery.PathFinder):
    """The path-based finder, blind to the installed gunicorn."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname == _HIDDEN and path is None:
            # Look everywhere but where the installed package lives.
            visible = [p for p in sys.path
                       if not os.path.isdir(os.path.join(p or ".", _HIDDEN))
                       or os.path.basename(os.path.normpath(p)) == "_shims"]
            return importlib.machinery.PathFinder.find_spec(fullname, visible, target)
        return importlib.machinery.PathFinder.find_spec(fullname, path, target)


sys.meta_path[:] = [_Hide if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
