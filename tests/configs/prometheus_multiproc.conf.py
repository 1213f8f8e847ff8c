# corpus: serve
# prometheus_client's multiprocess mode: a shared directory for the
# workers' metric files, and each dead worker's files marked in child_exit.
import glob
import os

from prometheus_client import multiprocess

workers = 2
metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "/tmp/prometheus")


def on_starting(server):
    os.makedirs(metrics_dir, exist_ok=True)
    for stale in glob.glob(os.path.join(metrics_dir, "*.db")):
        os.remove(stale)


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.pid)
