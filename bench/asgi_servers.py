"""The ASGI servers under test and what bench/asgi.py and bench/asgi_ws.py
share: how each server starts with one worker, the harness's setup (file
limit, subreaper, pinning), interleaved rounds, and median tables.

Runs in the harness process. Servers are started through servers.RunningServer
(pinned, own session, stopped by PID).
"""

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from common import add_server_args, server_args
from load import wait_for_quiet
from run import raise_nofile
from servers import CLK_TCK, RunningServer, Server, become_subreaper

HOST = "127.0.0.1"


def asgi_servers(bindir):
    """Every ASGI server by name, built from the executables in `bindir`."""
    def exe(name):
        return str(Path(bindir) / name)

    def rsgi(app, port):
        # `-k asgi` selects the very same worker with the very same settings
        # (both names map to the ASGI kind, no uvicorn CONFIG_KWARGS read),
        # so it is not measured twice.
        return [exe("rsgi"), app.target, "-w", "1", "-k", "uvicorn.workers.UvicornWorker",
                "-b", f"{HOST}:{port}", "--worker-connections", "1000"]

    def granian(app, port):
        return [exe("granian"), "--interface", "asgi", "--workers", "1",
                "--host", HOST, "--port", str(port), app.target]

    def uvicorn(ws):
        def build(app, port):
            return [exe("uvicorn"), app.target, "--host", HOST, "--port", str(port),
                    "--loop", "uvloop", "--http", "httptools", *(["--ws", ws] if ws else []),
                    "--no-access-log", "--log-level", "warning"]
        return build

    def gunicorn(worker):
        def build(app, port):
            return [exe("gunicorn"), "-w", "1", "-k", worker, "-b", f"{HOST}:{port}", app.target]
        return build

    return {s.name: s for s in [
        Server("rsgi", "rsgi", rsgi, "-w 1 -k uvicorn.workers.UvicornWorker --worker-connections 1000"),
        Server("granian", "granian", granian, "--interface asgi --workers 1"),
        Server("uvicorn", "uvicorn", uvicorn(None),
               "--loop uvloop --http httptools --no-access-log (ws: its default)"),
        Server("uvicorn-websockets", "uvicorn", uvicorn("websockets"),
               "the same with --ws websockets"),
        Server("gunicorn-uvicorn", "gunicorn", gunicorn("uvicorn_worker.UvicornWorker"),
               "-w 1 -k uvicorn_worker.UvicornWorker"),
        Server("gunicorn-asgi", "gunicorn", gunicorn("asgi"), "-w 1 -k asgi (gunicorn's own ASGI worker)"),
    ]}


def add_harness_args(ap, default_servers):
    """The options bench/asgi.py and bench/asgi_ws.py have in common."""
    add_server_args(ap, default_servers)
    ap.add_argument("--runs", type=int, default=3, help="interleaved rounds; figures are medians (3)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds measured per run (at most 60)")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of load before each measured run")
    ap.add_argument("--quiet-wait", type=float, default=60.0,
                    help="seconds to wait, at most, for both cores to calm down before each run")
    ap.add_argument("--json", type=Path, help="also write every run and the medians here")
    ap.add_argument("--logs", type=Path, default=None, help="server logs (default: a temporary directory)")


class Harness:
    """Cores, servers and logs for one benchmark command."""

    def __init__(self, args):
        self.args = args
        args.duration = min(args.duration, 60.0)
        bindir, names = server_args(args)
        known = asgi_servers(bindir)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise SystemExit(f"unknown servers: {', '.join(unknown)} (known: {', '.join(known)})")
        self.servers, self.missing = [], []
        for n in names:
            (self.servers if (Path(bindir) / known[n].needs).exists() else self.missing).append(known[n])
        self.nofile = raise_nofile()
        become_subreaper()
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) >= 2:
            self.server_core, self.client_core = cpus[0], cpus[1]
            os.sched_setaffinity(0, {self.client_core})  # the harness shares the client's core
        else:
            self.server_core = self.client_core = None
        self.logs = args.logs or Path(tempfile.mkdtemp(prefix="rsgi-bench-asgi-"))

    def rounds(self):
        """(round, servers in this round's order): the order rotates each round."""
        for r in range(self.args.runs):
            k = r % max(1, len(self.servers))
            yield r, self.servers[k:] + self.servers[:k]

    def start(self, server, app):
        """A started server (a context manager), once the machine is quiet enough."""
        cores = [c for c in (self.server_core, self.client_core) if c is not None] or [0]
        if self.args.quiet_wait > 0:
            wait_for_quiet(cores, max_wait=self.args.quiet_wait)
        return RunningServer(server, app, self.logs / f"{server.name}-{app.name}.log", core=self.server_core)


def cpu_per_unit(before, after, units):
    """{"user_us", "system_us", "cpu_us"} per unit of work, from two cpu_split() readings."""
    user, system = after[0] - before[0], after[1] - before[1]
    per = 1e6 / CLK_TCK / units if units else 0.0
    return {"user_us": user * per, "system_us": system * per, "cpu_us": (user + system) * per}


def medians(records, keys, columns, summed=()):
    """Rows of median figures over the ok records of each `keys` group, in first-seen order."""
    groups = {}
    for rec in records:
        groups.setdefault(tuple(rec[k] for k in keys), []).append(rec)
    rows = []
    for group, recs in groups.items():
        ok = [r for r in recs if r.get("ok")]
        row = dict(zip(keys, group))
        row["runs"] = f"{len(ok)}/{len(recs)}"
        for col in columns:
            vals = [r[col] for r in ok if r.get(col) is not None]
            row[col] = statistics.median(vals) if vals else None
        for col in summed:
            row[col] = sum(r.get(col) or 0 for r in ok)
        if not ok:
            row["error"] = next((r.get("error") for r in recs if r.get("error")), "no run")
        rows.append(row)
    return rows


def markdown(rows, columns):
    """A Markdown table of `rows`: [(header, key, format)] in `columns`."""
    out = ["| " + " | ".join(h for h, _, _ in columns) + " |",
           "|" + "|".join("---" if f is None else "---:" for _, _, f in columns) + "|"]
    for row in rows:
        cells = []
        for _, key, fmt in columns:
            v = row.get(key)
            cells.append("" if v is None else (str(v) if fmt is None else format(v, fmt)))
        if row.get("error"):
            cells[-1] = "failed: " + " ".join(row["error"].split())[:100]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def finish(harness, records, rows, table):
    """Print the table, and write the JSON when asked."""
    print()
    print(table)
    for s in harness.missing:
        print(f"(not installed: {s.name}, needs {s.needs})")
    print(f"server logs: {harness.logs}")
    if harness.args.json:
        harness.args.json.write_text(json.dumps({
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "options": {k: v for k, v in vars(harness.args).items() if k not in ("python", "json", "logs")},
            "servers": {s.name: s.note for s in harness.servers},
            "pinning": {"server_core": harness.server_core, "client_core": harness.client_core},
            "runs": records, "medians": rows}, indent=1, default=str) + "\n")
