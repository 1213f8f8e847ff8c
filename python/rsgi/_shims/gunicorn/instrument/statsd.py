"""``gunicorn.instrument.statsd.Statsd``: rsgi sends gunicorn's statsd
metrics itself (``statsd_host``); this name is the logger gunicorn would
pick for them."""

from gunicorn.glogging import Logger


class Statsd(Logger):
    pass
