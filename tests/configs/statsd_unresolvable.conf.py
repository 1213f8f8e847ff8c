# corpus: serve
# Metrics to a statsd sidecar whose name does not resolve (yet).
statsd_host = "statsd-sidecar.invalid:8125"
statsd_prefix = "corpus.web"
