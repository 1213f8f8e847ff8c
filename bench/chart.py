"""Draw requests/s per app per server from a results JSON: ``chart.py RESULTS.json OUT.png``.

Runs under bench/.venv's Python (matplotlib lives there), as a child of run.py.
One panel per app, each with its own scale (hello and Flask differ tenfold),
plus a panel for the slow-client scenario when it ran.
"""

import json
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator, StrMethodFormatter  # noqa: E402

from report import APP_TITLES  # noqa: E402

RSGI_COLOR = "#d9480f"
PEER_COLOR = "#868e96"


def main(src, dst):
    results = json.load(open(src))
    summary = results["summary"]
    slow = results.get("slow_summary") if results.get("slow") else None
    panels = list(summary.items())
    n = len(panels) + (1 if slow else 0)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.3 * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]

    for ax, (app, servers) in zip(flat, panels):
        names = [s for s, r in servers.items()]
        values = [servers[s]["rps"] or 0 for s in names]
        _bars(ax, names, values, "req/s")
        ax.set_title(APP_TITLES.get(app, app), fontsize=10)

    if slow:
        ax = flat[len(panels)]
        names = list(slow)
        values = [slow[s]["pct_of_baseline"] or 0 for s in names]
        _bars(ax, names, values, "%", fmt="{:.0f} %")
        n_slow = results["meta"]["options"]["slow_clients"]
        ax.set_title(f"hello kept with {n_slow} slow clients (% of undisturbed)", fontsize=10)

    for ax in flat[n:]:
        ax.axis("off")
    meta = results["meta"]
    fig.suptitle(
        f"One worker per server, wrk -c{meta['options']['connections']}, "
        f"median of {meta['options']['runs']} runs ({meta['date'][:10]}, "
        f"{meta['machine']['nproc']} CPUs)",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(dst, dpi=110)


def _bars(ax, names, values, unit, fmt="{:,.0f}"):
    colors = [RSGI_COLOR if n == "rsgi" else PEER_COLOR for n in names]
    y = range(len(names))
    ax.barh(list(y), values, color=colors)
    ax.set_yticks(list(y))
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    ax.tick_params(axis="x", labelsize=7)
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.set_xlabel(unit, fontsize=8)
    top = max(values) if values and max(values) > 0 else 1
    ax.set_xlim(0, top * 1.25)
    for i, v in enumerate(values):
        ax.text(v + top * 0.01, i, fmt.format(v), va="center", fontsize=7)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
