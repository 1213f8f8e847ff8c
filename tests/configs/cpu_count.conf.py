# corpus: serve
# The classic sizing rule from the number of cores.
import multiprocessing

cores = multiprocessing.cpu_count()
workers = cores * 2 + 1
threads = max(2, cores)
worker_connections = 500
max_requests = 500
max_requests_jitter = 25
