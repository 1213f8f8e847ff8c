# corpus: serve
# Settings that depend on the installed gunicorn's version.
import gunicorn

if gunicorn.version_info >= (20, 1):
    forwarded_allow_ips = "127.0.0.1,10.0.0.0/8"
else:
    forwarded_allow_ips = "127.0.0.1"
major = int(gunicorn.__version__.split(".")[0])
workers = 1 if major >= 20 else 2
