"""Which interface an app speaks (ASGI 3, ASGI 2 or WSGI), told from its
signature as uvicorn tells it. Every worker kind asks before it serves an
app, so this module imports nothing heavier than ``inspect``: a WSGI
worker must not pay for asyncio.
"""

from __future__ import annotations

import inspect
from typing import Any, Optional


def _positional_params(func: Any) -> Optional[int]:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    n = 0
    for p in sig.parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            n += 1
        elif p.kind == p.VAR_POSITIONAL:
            return None
    return n


def interface(app: Any) -> str:
    """``"asgi3"``, ``"asgi3-arity"``, ``"asgi2"``, ``"wsgi"`` or
    ``"unknown"``. uvicorn's rule decides ASGI 3 (a coroutine function, a
    class with ``__await__``, an object whose ``__call__`` is a coroutine
    function); otherwise the number of positional parameters tells a WSGI
    callable (``environ, start_response``) from an ASGI 2 one (``scope``)
    and from a plain function returning a coroutine (``scope, receive,
    send``). A signature that cannot say (``*args``, a C callable) is
    ``"unknown"``: each worker kind then takes the app for its own."""
    if inspect.isclass(app):
        if hasattr(app, "__await__"):
            return "asgi3"
        n = _positional_params(app)
        return "wsgi" if n == 2 else "asgi2"
    if inspect.isfunction(app) or inspect.ismethod(app):
        if inspect.iscoroutinefunction(app):
            return "asgi3"
        func = app
    else:
        call = getattr(app, "__call__", None)
        if inspect.iscoroutinefunction(call):
            return "asgi3"
        func = call
    n = _positional_params(func) if func is not None else None
    return {3: "asgi3-arity", 2: "wsgi", 1: "asgi2"}.get(n, "unknown")  # type: ignore[arg-type]
