# corpus: serve-own-bind
# Several addresses at once: a TCP port and a unix socket for a local proxy.
import os

bind = [
    "127.0.0.1:%s" % os.environ.get("CORPUS_PORT", "8000"),
    "unix:%s" % os.environ.get("CORPUS_SOCK", "/tmp/corpus.sock"),
]
workers = 1
