"""Several seeds' ``glimpse test`` results side by side (plain NumPy): one row per model and path, each seed's
figure and their mean, the table the docs show (``scripts/glimpse_seeds.py``).

Regression rows: the detection rate (%) at normalised distances 0.06 and 0.10 and the mean distance; classification
rows: the test error (%). RAM and random glimpses give two rows each, the single deterministic path (the headline)
and Monte-Carlo; the whole-image baselines and, for regression, the image centre one each. A model trained with
``weight_average`` (its figures are the averaged weights') gets the same rows again for its raw weights
(``unaveraged``), labelled "raw weights", where every seed holds them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from zoomrl.eval.seed_files import read_results

PATHS = (("mean_path", "single path"), ("monte_carlo", "Monte-Carlo"))
ORDER = ("ram", "random", "cnn", "mlp", "centre")


def load_seed(folder: str | Path) -> dict[str, Any]:
    """One seed's ``results.json`` (a folder or the file) with its seed from the ``config.json`` beside it; a missing
    or damaged file names itself."""
    path = Path(folder)
    path = path / "results.json" if path.is_dir() else path
    data = read_results(path, "`python -m zoomrl glimpse test`")
    if not isinstance(data.get("models"), dict) or "task" not in data:
        raise ValueError(f"{path}: holds no 'task' and 'models': not a glimpse results file")
    config = path.parent / "config.json"
    seed = json.loads(config.read_text(encoding="utf-8")).get("seed") if config.is_file() else None
    return {**data, "_path": str(path), "_seed": seed}


def _figures(task: str, scores: dict[str, Any]) -> dict[str, float]:
    if task == "classify":
        return {"error": 100.0 * scores["error"]}
    rate = scores["detection_rate"]
    return {
        "rate_0.06": 100.0 * rate["0.06"],
        "rate_0.10": 100.0 * rate["0.10"],
        "mean_distance": scores["mean_distance"],
    }


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows ``{model, path, figures: {name: [per seed]}, means: {name: mean}}`` for every model and path that all the
    seeds hold, in :data:`ORDER`; the seeds must share a task and a test size."""
    if not results:
        raise ValueError("no results to summarize")
    tasks = {r["task"] for r in results}
    sizes = {r.get("test_size") for r in results}
    if len(tasks) != 1 or len(sizes) != 1:
        raise ValueError(f"the results mix tasks {sorted(tasks)} or test sizes {sorted(map(str, sizes))}")
    task = tasks.pop()
    rows = []
    names = [m for m in ORDER if all(m in r["models"] for r in results)]
    for name in names:
        weights = [("", lambda scores: scores)]
        if all("unaveraged" in r["models"][name] for r in results):
            weights.append(("raw weights", lambda scores: scores["unaveraged"]))
        for which, pick in weights:
            first = pick(results[0]["models"][name])
            paths = [(k, label) for k, label in PATHS if k in first] or [(None, "")]
            for key, label in paths:
                per = [pick(r["models"][name]) for r in results]
                per = [_figures(task, scores[key] if key else scores) for scores in per]
                figures = {f: [p[f] for p in per] for f in per[0]}
                means = {f: float(np.mean(v)) for f, v in figures.items()}
                path = ", ".join(x for x in (label, which) if x)
                rows.append({"model": name, "path": path, "figures": figures, "means": means})
    return {
        "task": task,
        "test_size": sizes.pop(),
        "seeds": [r["_seed"] for r in results],
        "files": [r["_path"] for r in results],
        "rows": rows,
    }


def table(summary: dict[str, Any]) -> str:
    """A Markdown table: per row each seed's figure (``s0 / s1 / s2``) and the mean, bold."""
    seeds = " / ".join(f"s{s}" if s is not None else "?" for s in summary["seeds"])
    if summary["task"] == "classify":
        cols = [("error", "test error (%)", 2)]
    else:
        cols = [("rate_0.06", "d = 0.06 (%)", 1), ("rate_0.10", "d = 0.10 (%)", 1), ("mean_distance", "mean d", 3)]
    head = "| model | " + " | ".join(f"{title}: {seeds} | mean" for _, title, _ in cols) + " |"
    lines = [head, "|---|" + "---|---|" * len(cols)]
    for row in summary["rows"]:
        name = row["model"] + (f", {row['path']}" if row["path"] else "")
        cells = []
        for key, _, digits in cols:
            cells.append(" / ".join(f"{v:.{digits}f}" for v in row["figures"][key]))
            cells.append(f"**{row['means'][key]:.{digits}f}**")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
