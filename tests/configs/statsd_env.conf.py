# corpus: serve
# statsd address and tags from the environment, DogStatsD style.
import os

statsd_host = os.environ.get("STATSD_ADDR", "localhost:8125")
statsd_prefix = os.environ.get("STATSD_PREFIX", "corpus")
dogstatsd_tags = "env:test,service:corpus"
