"""The config-file layer of the precedence test (test_config.py)."""

workers = 3
threads = 3
timeout = 33
keepalive = 3
graceful_timeout = 33
max_requests = 333
proc_name = "from-file"
