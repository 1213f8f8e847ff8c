# corpus: serve
# Names that are not settings: a typo, options of other servers, helpers.
logfile = "/var/log/app/gunicorn.log"
keep_alive = 10
command = "/usr/local/bin/gunicorn"
acceslogformat = "%(h)s %(r)s"
pythonpath_extra = ["/srv/app"]
workers = 1
