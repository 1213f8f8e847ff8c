"""Only post_request raises: gunicorn and rsgi both log it and answer."""


def post_request(worker, req, environ, resp):
    raise RuntimeError("post_request failed on purpose")
