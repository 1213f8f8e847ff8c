# corpus: serve
# A logger_class writing both logs to files that logrotate moves (USR1).
import os

from gunicorn.glogging import Logger

log_dir = os.environ.get("CORPUS_LOG_DIR", "/var/log/app")
errorlog = os.path.join(log_dir, "error.log")
accesslog = os.path.join(log_dir, "access.log")
workers = 1


class TaggedLogger(Logger):
    access_fmt = "tagged %(message)s"


logger_class = TaggedLogger
