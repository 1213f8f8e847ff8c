"""Answers every request with a JSON dump of its ``environ``.

Strings, numbers, booleans and ``None`` are kept as they are, tuples become
lists, and any other object becomes ``"<type name>"``.  A few duck-typing
checks on the stream objects are added under the ``"__checks__"`` key.
"""

import json
import os


def _plain(value):
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return "<%s>" % type(value).__name__


def _checks(environ):
    stream = environ.get("wsgi.input")
    errors = environ.get("wsgi.errors")
    wrapper = environ.get("wsgi.file_wrapper")
    return {
        "input_methods": sorted(
            m for m in ("read", "readline", "readlines", "__iter__") if hasattr(stream, m)
        ),
        "errors_methods": sorted(
            m for m in ("write", "writelines", "flush") if hasattr(errors, m)
        ),
        "file_wrapper_callable": callable(wrapper),
        "key_types_str": all(type(k) is str for k in environ),
        "cgi_values_str": all(
            type(v) is str for k, v in environ.items() if "." not in k
        ),
        "server_pid": os.getpid(),
    }


def app(environ, start_response):
    dump = {k: _plain(v) for k, v in environ.items()}
    dump["__checks__"] = _checks(environ)
    # Exercise wsgi.errors the way apps do; nothing is asserted about output.
    environ["wsgi.errors"].flush()
    body = json.dumps(dump, sort_keys=True).encode("ascii")
    start_response(
        "200 OK",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
