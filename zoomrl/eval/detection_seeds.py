"""Several seeds' test results of a detecting family (``hierarchical test``, ``active test``) side by side (plain
Python): one row per detection set and score, each seed's AP (area) and their mean, beside the whole image, the
random agent and the oracle; the table the docs show (``scripts/detection_seeds.py``).

Rows: the agent's terminal regions under the score its test used (the validation's choice with ``--score auto``,
named per seed), then under every score the records support, and with a box regressor at the unmoved windows; for
the active family the same for all attended regions (``aar_score``, ``aar_by_score``); then the baselines of the
same run (with a box regressor, the whole image moved by it too; with a region classifier, the random agent's
attended regions scored by it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zoomrl.eval.seed_files import read_results


def load_seed(folder: str | Path) -> dict[str, Any]:
    """One seed's ``results.json`` (a folder, the family's ``<class>`` folder below it, or the file); a missing or
    damaged file names itself."""
    path = Path(folder)
    if path.is_dir():
        found = [path / "results.json"] if (path / "results.json").is_file() else sorted(path.glob("*/results.json"))
        path = found[0] if len(found) == 1 else path / "results.json"
    data = read_results(path, "the family's test")
    if not isinstance(data.get("agent"), dict) or "whole_image" not in data:
        raise ValueError(f"{path}: holds no 'agent' and 'whole_image': not a detection results file")
    return {**data, "_path": str(path)}


def _terminal(entry: dict[str, Any]) -> dict[str, Any]:
    """A baseline's or the agent's terminal-region evaluation (the active family nests it)."""
    return entry.get("terminal_regions", entry)


def _oracle(data: dict[str, Any]) -> float | None:
    if "oracle" in data:
        return float(_terminal(data["oracle"])["ap_area"])
    bounds = data.get("upper_bound") or {}
    scale = data.get("config", {}).get("scale_subregion")
    entry = bounds.get(f"scale_{scale:g}") if isinstance(scale, (int, float)) else None
    return None if entry is None else float(entry["ap_area"])


def rows(data: dict[str, Any]) -> list[tuple[str, float | None, str]]:
    """``(row name, AP area, note)`` of one seed, in table order (the note names the score a chosen row used)."""
    agent = data["agent"]
    out: list[tuple[str, float | None, str]] = [
        ("agent TR, score used", float(_terminal(agent)["ap_area"]), str(data.get("score", "")))
    ]
    out += [(f"TR by {k}", float(v["ap_area"]), "") for k, v in (data.get("agent_by_score") or {}).items()]
    unmoved = data.get("unrefined_by_score") or {}
    if data.get("score") in unmoved:
        out.append(("TR, score used, unmoved windows", float(unmoved[data["score"]]["ap_area"]), ""))
    if "all_attended_regions" in agent:
        out.append(("agent AAR, score used", float(agent["all_attended_regions"]["ap_area"]), str(data["aar_score"])))
        out += [(f"AAR by {k}", float(v["ap_area"]), "") for k, v in (data.get("aar_by_score") or {}).items()]
        unmoved = data.get("unrefined_aar_by_score") or {}
        if data.get("aar_score") in unmoved:
            out.append(("AAR, score used, unmoved windows", float(unmoved[data["aar_score"]]["ap_area"]), ""))
    out.append(("whole image", float(_terminal(data["whole_image"])["ap_area"]), ""))
    if "whole_image_moved" in data:
        out.append(("whole image moved by the regressor", float(_terminal(data["whole_image_moved"])["ap_area"]), ""))
    if "random" in data:
        out.append(("random agent TR", float(_terminal(data["random"])["ap_area"]), ""))
        if "all_attended_regions" in data["random"]:  # its boxes under the run's region classifier
            aar = float(data["random"]["all_attended_regions"]["ap_area"])
            out.append(("random agent AAR, the run's region classifier", aar, ""))
    out.append(("oracle TR", _oracle(data), ""))
    return out


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"seeds": [...], "rows": [{"name", "values", "notes", "mean"}]}``; a row a seed lacks is None there and
    left out of the mean."""
    per_seed = [dict((name, (value, note)) for name, value, note in rows(r)) for r in results]
    names: list[str] = []
    for seed_rows in per_seed:
        names += [n for n in seed_rows if n not in names]
    table_rows = []
    for name in names:
        values = [s.get(name, (None, ""))[0] for s in per_seed]
        notes = [s.get(name, (None, ""))[1] for s in per_seed]
        present = [v for v in values if v is not None]
        table_rows.append(
            {"name": name, "values": values, "notes": notes, "mean": float(np.mean(present)) if present else None}
        )
    seeds = [r.get("config", {}).get("seed") for r in results]
    return {"seeds": seeds, "rows": table_rows, "files": [r["_path"] for r in results]}


def table(summary: dict[str, Any]) -> str:
    """The Markdown table: one column per seed, then the mean."""

    def cell(value: float | None, note: str = "") -> str:
        return "" if value is None else f"{value:.3f}" + (f" ({note})" if note else "")

    head = "| run | " + " | ".join(f"seed {s}" for s in summary["seeds"]) + " | **mean** |"
    lines = [head, "| --- |" + " --- |" * (len(summary["seeds"]) + 1)]
    for row in summary["rows"]:
        cells = [cell(v, n) for v, n in zip(row["values"], row["notes"])]
        lines.append(f"| {row['name']} | " + " | ".join(cells) + f" | **{cell(row['mean'])}** |")
    return "\n".join(lines)


__all__ = ["load_seed", "rows", "summarize", "table"]
