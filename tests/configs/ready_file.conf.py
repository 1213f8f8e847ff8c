# corpus: serve
# A readiness file for the orchestrator: written once listening, removed on exit.
import os
import pathlib

READY = pathlib.Path(os.environ.get("READY_FILE", "/tmp/app-ready"))
workers = 2


def when_ready(server):
    READY.write_text(str(os.getpid()))
    server.log.info("Ready file written: %s", READY)


def on_exit(server):
    if READY.exists():
        READY.unlink()
