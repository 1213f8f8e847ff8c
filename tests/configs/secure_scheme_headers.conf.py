# corpus: serve
# Behind a TLS-terminating proxy that says so in mixed-case headers.
forwarded_allow_ips = "*"
secure_scheme_headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on"}
proxy_allow_ips = "*"
workers = 1
