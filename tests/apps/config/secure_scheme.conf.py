"""Replaces gunicorn's default secure-scheme headers with one of our own
(test_proxy_headers.py)."""

secure_scheme_headers = {"X-PROTO": "secure"}
