"""The sweep's outputs: AP per class and the mean, as CSV, JSON and a bar plot. Plain Python (matplotlib's Agg).

Each family's test writes ``results.json``; :data:`METRICS` says where its APs are (VOC2007 11-point AP, the
paper's protocol): ``hierarchical``: the agent's triggered windows (``ap``); ``active``: its terminal regions
(``ap_tr``) and all attended regions (``ap_aar``).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

METRICS: dict[str, dict[str, tuple[str, ...]]] = {
    "hierarchical": {"ap": ("agent", "ap_voc07")},
    "active": {
        "ap_tr": ("agent", "terminal_regions", "ap_voc07"),
        "ap_aar": ("agent", "all_attended_regions", "ap_voc07"),
    },
}


def extract(family: str, results: Mapping[str, Any]) -> dict[str, float]:
    """The APs of one class's ``results.json``, by :data:`METRICS`."""
    out = {}
    for name, path in METRICS[family].items():
        value: Any = results
        for key in path:
            if not isinstance(value, Mapping) or key not in value:
                raise ValueError(f"results.json of family {family} has no {'/'.join(path)}")
            value = value[key]
        out[name] = float(value)
    return out


def build_table(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """``rows`` (one per setting and class: ``setting``, ``class``, ``status``, the metrics) followed by one
    ``mean`` row per setting: the mean of each metric over that setting's classes that finished (None if none)."""
    table = [dict(r) for r in rows]
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    for setting in settings:
        done = [r for r in rows if r["setting"] == setting and r.get("status") == "ok"]
        mean: dict[str, Any] = {"setting": setting, "class": "mean", "status": f"{len(done)} classes"}
        for m in metrics:
            values = [float(r[m]) for r in done if r.get(m) is not None]
            mean[m] = sum(values) / len(values) if values else None
        table.append(mean)
    return table


def write_csv(table: Sequence[Mapping[str, Any]], columns: Sequence[str], path: Path) -> None:
    from zoomrl.core.io import atomic_path

    with atomic_path(path, suffix=".csv") as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
            writer.writeheader()
            for row in table:
                writer.writerow({c: ("" if row.get(c) is None else row.get(c)) for c in columns})


def plot_table(table: Sequence[Mapping[str, Any]], metrics: Sequence[str], path: Path, title: str) -> None:
    """Grouped bars: AP per class (and the mean, last), one bar per metric and setting."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from zoomrl.core.io import atomic_path

    classes = list(dict.fromkeys(r["class"] for r in table if r["class"] != "mean")) + ["mean"]
    settings = list(dict.fromkeys(r["setting"] for r in table))
    series = [(s, m) for s in settings for m in metrics]
    fig = Figure(figsize=(min(14.0, max(6.0, 0.45 * len(classes) + 2)), 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(series))
    for j, (setting, metric) in enumerate(series):
        values = []
        for c in classes:
            row = next((r for r in table if r["setting"] == setting and r["class"] == c), None)
            v = None if row is None else row.get(metric)
            values.append(0.0 if v is None or (isinstance(v, float) and math.isnan(v)) else float(v))
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(classes))]
        label = metric if len(settings) == 1 else f"{setting}: {metric}"
        ax.bar(xs, values, width=width, label=label)
    ax.set_xticks(range(len(classes)))
    ax.set_xticklabels(classes, rotation=60, ha="right", fontsize=8)
    ax.set_ylim(0.0, 1.0)
    ax.set_ylabel("AP (VOC2007 11-point)")
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
