# corpus: serve
# A logger_class whose setup() adds a filter dropping load-balancer probes.
import logging

import gunicorn.glogging

accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s "%(a)s" %(M)sms'
workers = 1


class DropProbes(logging.Filter):
    def filter(self, record):
        return "/lb-status" not in record.getMessage()


class ProbeQuietLogger(gunicorn.glogging.Logger):
    def setup(self, cfg):
        super().setup(cfg)
        logging.getLogger("gunicorn.access").addFilter(DropProbes())


logger_class = ProbeQuietLogger
