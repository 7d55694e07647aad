#!/usr/bin/env python
"""How well each detection score ranks hits above near misses, from a testing run's detections.json.

    python scripts/score_ranking.py RESULTS_DIR/<class>/detections.json [...]

For every triggered window: its IoU with the best ground truth of the image (before painting: an upper estimate
of the IoU the evaluation credits). Prints the trigger-IoU histogram, then per score the AUC of hits
(IoU >= 0.5) against near misses (0.3 <= IoU < 0.5) and against all misses: the probability that a random hit
outscores a random miss (0.5 is chance, 1 a perfect ranking; ties count half); and the AP (area) the records
would have under each score (the figures a test's ``agent_by_score`` holds).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from zoomrl.core.geometry import iou_matrix
from zoomrl.eval.detection import DETECTION_SCORES, ap_by_score


def auc(pos: list[float], neg: list[float]) -> float:
    if not pos or not neg:
        return float("nan")
    p, n = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


def main(paths: list[str]) -> int:
    for path in paths:
        images = json.loads(Path(path).read_text())["images"]
        rows = []  # (best IoU, search, triggers before it in its image)
        for image in images:
            gt = np.array([g["box"] for g in image["ground_truth"] if not g.get("difficult")], float).reshape(-1, 4)
            triggered = [search for search in image["searches"] if search.get("triggered")]
            for k, search in enumerate(triggered):
                iou = float(iou_matrix(np.array([search["box"]], float), gt).max()) if len(gt) else 0.0
                rows.append((iou, search, k))
        ious = np.array([r[0] for r in rows])
        counts, _ = np.histogram(ious, bins=np.linspace(0, 1, 11))
        print(f"{path}: {len(rows)} triggers; IoU histogram (0-0.1, ..., 0.9-1): {counts.tolist()}")
        for name, fn in DETECTION_SCORES.items():
            scores = [fn(s, k) for _, s, k in rows]
            if any(v is None for v in scores):
                continue
            hits = [v for v, row in zip(scores, rows) if row[0] >= 0.5]
            near = [v for v, row in zip(scores, rows) if 0.3 <= row[0] < 0.5]
            miss = [v for v, row in zip(scores, rows) if row[0] < 0.5]
            print(
                f"  {name:<20} AUC hits vs near misses {auc(hits, near):.2f}   hits vs all misses {auc(hits, miss):.2f}"
            )
        aps = ap_by_score(images)
        print("  AP (area) by score: " + ", ".join(f"{name} {ap:.3f}" for name, ap in aps.items()))
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print("usage: python scripts/score_ranking.py DETECTIONS_JSON [...]", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
