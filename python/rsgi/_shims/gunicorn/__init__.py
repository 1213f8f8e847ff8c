"""rsgi's stand-in for the ``gunicorn`` package, importable only when the
real gunicorn is not installed (rsgi puts this directory last on
``sys.path``). It offers what configuration files written for gunicorn
import: the version names, the logger class to subclass, the worker classes
to subclass or name, and ``gunicorn.app.base.BaseApplication``, which starts
rsgi. Setting ``SERVER_SOFTWARE`` (or ``SERVER``) here changes rsgi's
``Server`` header and the ``SERVER_SOFTWARE`` environ key.
"""

RSGI_SHIM = True

version_info = (27, 0, 1)
__version__ = ".".join(str(v) for v in version_info)
SERVER = "gunicorn"
SERVER_SOFTWARE = "%s/%s" % (SERVER, __version__)
