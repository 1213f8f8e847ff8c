# corpus: serve
# Container habits: heartbeat files in /dev/shm, request limits from env.
import os

worker_tmp_dir = "/dev/shm"
limit_request_line = int(os.getenv("LIMIT_REQUEST_LINE", 4094))
limit_request_fields = int(os.getenv("LIMIT_REQUEST_FIELDS", "50"))
limit_request_field_size = 0
forwarded_allow_ips = os.environ.get("FORWARDED_IPS", "127.0.0.1,172.16.0.0/12")
workers = 1
loglevel = os.getenv("LOG_LEVEL", "WARNING")
