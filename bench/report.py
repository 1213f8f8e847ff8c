"""Turn raw runs into medians, ratios to rsgi, and tables (plain text and Markdown).

Pure functions over the result dicts that run.py records; no I/O but returning strings.
"""

import statistics

APP_TITLES = {
    "hello": "hello (13-byte body)",
    "10k": "10 KiB body",
    "1m": "1 MiB body",
    "echo": "POST echo, 10 KiB",
    "flask": "Flask hello",
    "flask-json": "Flask view returning jsonify(...)",
    "django": "Django hello",
}


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _mib(kib):
    return None if kib is None else kib / 1024


def summarize(runs, servers, apps):
    """{app: {server: medians and totals}} with each server's req/s ratio to rsgi."""
    out = {}
    for app in apps:
        rows = {}
        for server in servers:
            mine = [r for r in runs if r["server"] == server and r["app"] == app]
            ok = [r for r in mine if r["ok"]]
            probes = [r["probe"] for r in ok]
            rows[server] = {
                "runs_ok": len(ok),
                "runs_failed": len(mine) - len(ok),
                "failures": sorted({r.get("error", "") for r in mine if not r["ok"]})[:3],
                "rps": _median([r["rps"] for r in ok]),
                "rps_runs": [round(r["rps"]) for r in ok],
                "p50_ms": _median([r["p50_ms"] for r in ok]),
                "p99_ms": _median([r["p99_ms"] for r in ok]),
                "cpu_us_per_req": _median([r["cpu_us_per_req"] for r in ok]),
                "user_us_per_req": _median([r.get("user_us_per_req") for r in ok]),
                "system_us_per_req": _median([r.get("system_us_per_req") for r in ok]),
                "client_vcsw_per_req": _median([r.get("client_vcsw_per_req") for r in ok]),
                "rss_worker_mib": _mib(_median([r["rss_worker_kib"] for r in ok])),
                "rss_master_mib": _mib(_median([r["rss_master_kib"] for r in ok])),
                "errors": sum(r["errors"] for r in ok),
                "non2xx": sum(r["non2xx"] for r in ok),
                "probe_max_ms": max((p["max_ms"] for p in probes if p["max_ms"] is not None), default=None),
                "probe_count": sum(p["count"] for p in probes),
                "probe_failures": sum(p["failures"] for p in probes),
                "foreign_cpu_pct_max": max((r.get("foreign_cpu_pct", 0) for r in ok), default=None),
            }
        base = (rows.get("rsgi") or {}).get("rps")
        for row in rows.values():
            row["ratio_to_rsgi"] = row["rps"] / base if base and row["rps"] is not None else None
        out[app] = rows
    return out


def summarize_slow(slow, servers):
    out = {}
    for server in servers:
        mine = [r for r in slow if r["server"] == server]
        ok = [r for r in mine if r["ok"]]
        probes = [r["probe"] for r in ok]
        out[server] = {
            "runs_ok": len(ok),
            "runs_failed": len(mine) - len(ok),
            "failures": sorted({r.get("error", "") for r in mine if not r["ok"]})[:3],
            "baseline_rps": _median([r["baseline_rps"] for r in ok]),
            "rps": _median([r["rps"] for r in ok]),
            "pct_of_baseline": _median([r["pct_of_baseline"] for r in ok]),
            "slow_connected": _median([r["slow_connected"] for r in ok]),
            "slow_still_open": _median([r["slow_still_open"] for r in ok]),
            "errors": sum(r["errors"] for r in ok),
            "rss_worker_mib": _mib(_median([r["rss_worker_kib"] for r in ok])),
            "probe_max_ms": max((p["max_ms"] for p in probes if p["max_ms"] is not None), default=None),
            "probe_count": sum(p["count"] for p in probes),
            "probe_failures": sum(p["failures"] for p in probes),
        }
    return out


# --- formatting -----------------------------------------------------------------


def _num(v, fmt="{:,.0f}", none="-"):
    return none if v is None else fmt.format(v)


def _ms(v):
    if v is None:
        return "-"
    return f"{v:.2f} ms" if v < 10 else f"{v:.0f} ms"


def _probe(row):
    if not row["probe_count"]:
        return "-"
    text = _ms(row["probe_max_ms"])
    if row["probe_failures"]:
        text += f" ({row['probe_failures']}/{row['probe_count']} failed)"
    return text


def _rss(row):
    w, m = row["rss_worker_mib"], row.get("rss_master_mib")
    return f"{_num(w, '{:.1f}')} / {_num(m, '{:.1f}')}"


MAIN_COLUMNS = ["server", "req/s", "× rsgi", "p50", "p99", "CPU µs/req", "user / sys µs/req",
                "client wake-ups/req", "RSS MiB worker / master", "errors", "probe max"]
SLOW_COLUMNS = ["server", "undisturbed req/s", "with slow clients", "% kept",
                "held / still open", "errors", "probe max"]


def _main_cells(server, row):
    if not row["runs_ok"]:
        return [server, "FAILED", "", "", "", "", "", "", "", "", (row["failures"] or [""])[0][:60]]
    return [
        server,
        _num(row["rps"]),
        _num(row["ratio_to_rsgi"], "{:.2f}"),
        _ms(row["p50_ms"]),
        _ms(row["p99_ms"]),
        _num(row["cpu_us_per_req"], "{:.1f}"),
        f"{_num(row['user_us_per_req'], '{:.1f}')} / {_num(row['system_us_per_req'], '{:.1f}')}",
        _num(row["client_vcsw_per_req"], "{:.3f}"),
        _rss(row),
        _num(row["errors"]) + (f" ({row['runs_failed']} runs failed)" if row["runs_failed"] else ""),
        _probe(row),
    ]


def _slow_cells(server, row):
    if not row["runs_ok"]:
        return [server, "FAILED", "", "", "", "", (row["failures"] or [""])[0][:60]]
    return [
        server,
        _num(row["baseline_rps"]),
        _num(row["rps"]),
        _num(row["pct_of_baseline"], "{:.0f} %"),
        f"{_num(row['slow_connected'])} / {_num(row['slow_still_open'])}",
        _num(row["errors"]),
        _probe(row),
    ]


def _text_table(columns, rows):
    widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) for i, c in enumerate(columns)]
    line = lambda cells: "  ".join(  # noqa: E731
        str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, rows)])


def _md_table(columns, rows):
    out = ["| " + " | ".join(columns) + " |", "|" + "|".join(["---"] + ["---:"] * (len(columns) - 1)) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _sections(results, table):
    parts = []
    for app, rows in results["summary"].items():
        parts.append((APP_TITLES.get(app, app), table(MAIN_COLUMNS, [_main_cells(s, r) for s, r in rows.items()])))
    if results["slow_summary"] and results["slow"]:
        n = results["meta"]["options"]["slow_clients"]
        rows = [_slow_cells(s, r) for s, r in results["slow_summary"].items()]
        parts.append((f"slow clients: hello while {n} connections hold half-sent heads",
                      table(SLOW_COLUMNS, rows)))
    return parts


def text_tables(results):
    return "\n\n".join(f"== {title}\n{body}" for title, body in _sections(results, _text_table))


def markdown(results):
    meta = results["meta"]
    m = meta["machine"]
    v = meta["versions"]
    lines = [
        f"Run {meta['date']}, {meta['elapsed_s']} s: `{meta['command']}`",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory']}, kernel {m['kernel']}, {m['os']}; "
        f"server on core {meta['pinning']['server_core']}, wrk and the probe on core "
        f"{meta['pinning']['client_core']}.",
        "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val) + ".",
        f"rsgi checkout: {meta['rsgi_checkout']['commit']}"
        + (" (with uncommitted changes)" if meta["rsgi_checkout"]["uncommitted_changes_in_build_inputs"] else ""),
        "",
        f"Each figure is the median of {meta['options']['runs']} interleaved runs of "
        f"{meta['options']['duration']:g} s (after {meta['options']['warmup']:g} s of warm-up), "
        f"wrk -t1 -c{meta['options']['connections']}; errors and probe failures are totals over the runs, "
        "probe max the worst over them.",
    ]
    foreign = [r.get("foreign_cpu_pct") for r in results["runs"] + results["slow"] if r.get("ok")]
    foreign = [f for f in foreign if f is not None]
    if foreign:
        waits = [r.get("quiet_wait_s") or 0 for r in results["runs"] + results["slow"]]
        lines += ["", f"Other processes on the server's core during the measured runs: median "
                  f"{statistics.median(foreign):.1f} %, worst {max(foreign):.1f} % of the core "
                  f"(the harness waited {sum(waits):.0f} s in all for a quiet machine before runs)."]
    if meta["unavailable"]:
        lines += ["", "Unavailable: " + "; ".join(
            f"{k} ({(e or '').strip().splitlines()[-1] if e else 'not installed'})"
            for k, e in meta["unavailable"].items())]
    for title, body in _sections(results, _md_table):
        lines += ["", f"### {title}", "", body]
    return "\n".join(lines) + "\n"


def run_line(rec):
    head = f"{rec['server']:<17} {rec['app']:<6} run {rec['run'] + 1}"
    if not rec["ok"]:
        return f"{head}: FAILED {rec.get('error', '')}"
    pr = rec["probe"]
    return (f"{head}: {rec['rps']:>9,.0f} req/s  p50 {_ms(rec['p50_ms'])}  p99 {_ms(rec['p99_ms'])}  "
            f"cpu {_num(rec.get('user_us_per_req'), '{:.1f}')}+{_num(rec.get('system_us_per_req'), '{:.1f}')} µs/req  "
            f"wake {_num(rec.get('client_vcsw_per_req'), '{:.3f}')}  "
            f"rss {_num(_mib(rec['rss_worker_kib']), '{:.1f}')}/{_num(_mib(rec['rss_master_kib']), '{:.1f}')} MiB  "
            f"err {rec['errors']}  probe max {_ms(pr['max_ms'])} fail {pr['failures']}/{pr['count']}")


def slow_line(rec):
    head = f"{rec['server']:<17} slow   run {rec['run'] + 1}"
    if not rec["ok"]:
        return f"{head}: FAILED {rec.get('error', '')}"
    pr = rec["probe"]
    return (f"{head}: {rec['baseline_rps']:,.0f} -> {rec['rps']:,.0f} req/s "
            f"({_num(rec['pct_of_baseline'], '{:.0f}')} %), held {rec['slow_connected']} "
            f"(still open {rec['slow_still_open']}), err {rec['errors']}, "
            f"probe max {_ms(pr['max_ms'])} fail {pr['failures']}/{pr['count']}")
