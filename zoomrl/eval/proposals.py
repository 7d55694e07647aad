"""Detection sets beyond the triggered boxes, and proposal recall, on top of :func:`zoomrl.eval.detection.evaluate`
(the active family reports both; nothing here is specific to it). Plain NumPy.

* **Terminal regions (TR)**: the triggered boxes, each scored by the trigger's Q-value at that box (the records'
  own ``score``); fed to :func:`~zoomrl.eval.detection.evaluate` as they are.
* **All attended regions (AAR)**: every box the agent analysed (took an action in), each scored by the trigger's
  Q-value at that box, i.e. the agent's own estimate of how good a detection it would make; per image a greedy
  non-maximum suppression at ``nms`` IoU (R-CNN's 0.3; 0: none) drops lower-scored boxes that overlap a kept one.
  :func:`attended_records` turns each analysed box into a one-step triggered search, so the same evaluation runs.
* :func:`recall_vs_proposals`: the share of non-difficult objects covered (IoU >= 0.5) by one of the first ``k``
  boxes an image analysed, in the order the agent visited them, for each ``k``: recall against the number of
  proposals per image.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from zoomrl.core.geometry import iou_matrix

PROPOSAL_GRID = (1, 2, 5, 10, 20, 50, 100, 200)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Greedy non-maximum suppression: indices kept, in descending score (stable on ties); a box is dropped when
    its IoU with a kept box exceeds ``threshold``. ``threshold <= 0`` keeps everything, in input order."""
    n = len(boxes)
    if threshold <= 0 or n == 0:
        return list(range(n))
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    ious = iou_matrix(boxes, boxes)
    kept: list[int] = []
    for i in order:
        if all(ious[i, j] <= threshold for j in kept):
            kept.append(int(i))
    return kept


def attended_records(records: Sequence[Mapping[str, Any]], trigger: int, nms_iou: float = 0.0) -> list[dict[str, Any]]:
    """The records with each analysed box as a triggered one-step search scored by ``Q[trigger]`` at that box
    (searches without Q-values score 0), after non-maximum suppression at ``nms_iou`` per image."""
    out = []
    for record in records:
        boxes, scores, actions = [], [], []
        for search in record.get("searches") or []:
            qs = search.get("q_values") or [None] * len(search.get("windows") or [])
            for window, action, q in zip(search.get("windows") or [], search.get("actions") or [], qs):
                boxes.append([float(v) for v in window])
                scores.append(float(q[trigger]) if q is not None else 0.0)
                actions.append(int(action))
        keep = nms(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(scores), nms_iou)
        searches = [
            {
                "windows": [boxes[i]],
                "actions": [actions[i]],
                "q_values": None,
                "triggered": True,
                "box": boxes[i],
                "score": scores[i],
                "steps": 1,
            }
            for i in sorted(keep)
        ]
        out.append(
            {
                **{k: v for k, v in record.items() if k != "searches"},
                "searches": searches,
                "windows_analysed": len(boxes),
            }
        )
    return out


def recall_vs_proposals(
    records: Sequence[Mapping[str, Any]], grid: Iterable[int] = PROPOSAL_GRID, iou_threshold: float = 0.5
) -> dict[str, float]:
    """``{str(k): recall}``: the share of non-difficult objects with IoU >= ``iou_threshold`` with one of the first
    ``k`` analysed boxes of their image (visit order), for each ``k`` of ``grid`` (0.0 without objects)."""
    grid = tuple(int(k) for k in grid)
    first_cover: list[float] = []  # per object: 1-based index of the first covering box, inf if none
    for record in records:
        gts = [g for g in record.get("ground_truth") or [] if not g.get("difficult", False)]
        if not gts:
            continue
        gt = np.array([g["box"] for g in gts], dtype=np.float64).reshape(-1, 4)
        boxes = [w for s in record.get("searches") or [] for w in (s.get("windows") or [])]
        if not boxes:
            first_cover.extend([np.inf] * len(gt))
            continue
        covered = iou_matrix(np.asarray(boxes, dtype=np.float64), gt) >= iou_threshold
        for j in range(len(gt)):
            hits = np.flatnonzero(covered[:, j])
            first_cover.append(float(hits[0] + 1) if len(hits) else np.inf)
    firsts = np.asarray(first_cover, dtype=np.float64)
    return {str(k): float((firsts <= k).mean()) if len(firsts) else 0.0 for k in grid}


__all__ = ["attended_records", "nms", "recall_vs_proposals", "PROPOSAL_GRID"]
