# corpus: serve
# gunicorn's own logger given JSON formats in place, no logger_class.
from gunicorn import glogging

glogging.Logger.datefmt = "%Y-%m-%dT%H:%M:%S%z"
glogging.Logger.error_fmt = '{"ts": "%(asctime)s", "pid": %(process)d, "level": "%(levelname)s", "msg": "%(message)s"}'
glogging.Logger.access_fmt = '{"access": "%(message)s"}'
accesslog = "-"
workers = 1
