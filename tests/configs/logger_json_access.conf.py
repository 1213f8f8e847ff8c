# corpus: serve
# A logger_class that writes JSON access lines and skips the health check.
import json

from gunicorn import glogging

accesslog = "-"
workers = 1


class JsonAccessLogger(glogging.Logger):
    def access(self, resp, req, environ, request_time):
        if req.path == "/healthz":
            return
        self.access_log.info(json.dumps({
            "method": req.method,
            "path": req.path,
            "status": resp.status_code if hasattr(resp, "status_code") else resp.status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": request_time.total_seconds() * 1000,
            "remote": environ.get("REMOTE_ADDR"),
        }))


logger_class = JsonAccessLogger
