# corpus: serve
# A configuration that talks while it loads.
import os
import sys

workers = int(os.environ.get("WEB_CONCURRENCY", 2))
print("config: loading %s with %s workers" % (os.path.basename(__file__), workers))
print("config: python %d.%d" % sys.version_info[:2], file=sys.stderr)
