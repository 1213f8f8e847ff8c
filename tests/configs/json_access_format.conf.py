# corpus: serve
# An access_log_format that writes JSON by hand, logs to stdout/stderr.
accesslog = "-"
errorlog = "-"
access_log_format = (
    '{"remote": "%(h)s", "request": "%(r)s", "status": %(s)s, "bytes": "%(b)s", '
    '"agent": "%(a)s", "request_time_us": %(D)s, "forwarded_for": "%({x-forwarded-for}i)s"}'
)
workers = 1
