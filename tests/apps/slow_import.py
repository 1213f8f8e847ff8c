"""An app whose import takes long: it first writes the importing process's
pid to $BOOTING_FILE (when set), then sleeps $IMPORT_SECONDS (default 60),
so a test can act on a worker that is still booting.

    slow_import:app   fast 200 "ok" (once imported)
"""

import os
import time

if os.environ.get("BOOTING_FILE"):
    with open(os.environ["BOOTING_FILE"], "w") as f:
        f.write(str(os.getpid()))
time.sleep(float(os.environ.get("IMPORT_SECONDS", "60")))


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
