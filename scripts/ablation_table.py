#!/usr/bin/env python
"""Print the ablation table of scripts/ablation.sh: one row per recipe folder under OUT.

python scripts/ablation_table.py OUT CLASS
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def row(folder: Path, cls: str) -> str | None:
    res = folder / "results" / cls / "results.json"
    if not res.is_file():
        return None
    r = json.loads(res.read_text())
    a = r["agent"]
    ub = r.get("upper_bound", {}).get(f"scale_{r['config']['scale_subregion']:g}", {})
    rnd = r.get("random", {})
    secs = folder / "train_seconds"
    minutes = f"{int(secs.read_text()) / 60:.1f}" if secs.is_file() else "?"
    med = a.get("median_windows_per_found_object")
    by = r.get("agent_by_score", {})
    margin = f"{by['trigger_advantage']['ap_area']:.3f}" if "trigger_advantage" in by else "-"
    iou = f"{by['predicted_iou']['ap_area']:.3f}" if "predicted_iou" in by else "-"
    return (
        f"| {folder.name} | {a['ap_area']:.3f} | {margin} | {iou} | {a['ap_voc07']:.3f} | "
        f"{rnd.get('ap_area', float('nan')):.3f} | "
        f"{ub.get('ap_area', float('nan')):.3f} | {a['ap_area'] / max(ub.get('ap_area', 1e-9), 1e-9):.2f} | "
        f"{med if med is not None else '-'} | {minutes} |"
    )


def main() -> int:
    out, cls = Path(sys.argv[1]), sys.argv[2]
    print(
        "| recipe | AP (area), run's score | AP (area), margin score | AP (area), IoU-head score | AP (VOC07) "
        "| random AP "
        "| upper bound AP | AP / upper bound | windows/object | train min |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        line = row(folder, cls)
        if line:
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
