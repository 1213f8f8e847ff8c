"""The few ``gunicorn.util`` helpers custom applications call."""

import email.utils
import importlib
import os
import time


def import_app(module):
    """``module:expression`` (``module`` alone means ``module:application``)
    to the app object; the expression is a name or a call of one."""
    name, _, expr = module.partition(":")
    mod = importlib.import_module(name)
    expr = expr or "application"
    app = eval(expr, {}, vars(mod))  # noqa: S307  (as the command line's APP_MODULE)
    if app is None or not callable(app):
        raise RuntimeError("Application object must be callable.")
    return app


def getcwd():
    """The current directory, as ``$PWD`` spells it when it is the same."""
    cwd = os.getcwd()
    pwd = os.environ.get("PWD")
    try:
        if pwd and os.path.samefile(pwd, cwd):
            return pwd
    except OSError:
        pass
    return cwd


def http_date(timestamp=None):
    """An HTTP date (RFC 9110)."""
    return email.utils.formatdate(time.time() if timestamp is None else timestamp, usegmt=True)
