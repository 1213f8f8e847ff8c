"""A project package that configuration files import from."""

DEFAULT_THREADS = 2
