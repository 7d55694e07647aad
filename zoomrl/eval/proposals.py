"""Detection sets beyond the triggered boxes, and proposal recall, on top of :func:`zoomrl.eval.detection.evaluate`
(the active family reports both; nothing here is specific to it). Plain NumPy.

* **Terminal regions (TR)**: the triggered boxes, each scored by the trigger's Q-value at that box (the records'
  own ``score``); fed to :func:`~zoomrl.eval.detection.evaluate` as they are.
* **All attended regions (AAR)**: every box the agent analysed (took an action in), each scored as if the agent
  had triggered there (:data:`ATTENDED_SCORES`): by default the trigger's Q-value at that box, i.e. the agent's own
  estimate of how good a detection it would make; or the trigger's margin over the best other action; or the IoU
  head's prediction for the box. Per image a greedy non-maximum suppression at ``nms`` IoU (R-CNN's 0.3; 0: none)
  drops lower-scored boxes that overlap a kept one, and with ``vote_iou`` each kept box becomes the score-weighted
  mean of the boxes around it (:func:`box_vote`). :func:`attended_records` turns each analysed box into a one-step
  triggered search, so the same evaluation runs; :func:`attended_by_score` evaluates it under every score the
  records support.
* :func:`recall_vs_proposals`: the share of non-difficult objects covered (IoU >= 0.5) by one of the first ``k``
  boxes an image analysed, in the order the agent visited them, for each ``k``: recall against the number of
  proposals per image; the agent's own windows, or (``moved``) each moved by the box regressor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from zoomrl.core.geometry import iou_matrix
from zoomrl.eval.detection import DETECTION_SCORES, evaluate

PROPOSAL_GRID = (1, 2, 5, 10, 20, 50, 100, 200)
AAR_BUDGETS = (5, 10, 20, 50)
"""The budgets of analysed boxes per image at which :func:`attended_by_budget` evaluates all attended regions."""

ATTENDED_SCORES = ("trigger_q", "trigger_advantage", "predicted_iou", "region_score")
"""The scores an attended box may take (:func:`window_score`), each the detection score of
:data:`zoomrl.eval.detection.DETECTION_SCORES` of that name, applied as if the agent had triggered in the box: the
trigger's Q-value there, its margin over the best other action, the IoU head's prediction for the box, a region
classifier's score of the box."""

WindowScore = Callable[[Mapping[str, Any], int], "float | None"]
"""A per-window detection score ``(search, index) -> value or None`` (those of ``DETECTION_SCORES``): it scores
the search's last step."""


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


def box_vote(boxes: np.ndarray, scores: np.ndarray, kept: Sequence[int], vote_iou: float) -> np.ndarray:
    """Box voting (Gidaris and Komodakis 2015): each kept box ``boxes[i]`` for ``i`` in ``kept`` replaced by the
    mean of every box of ``boxes`` ``(N, 4)`` whose IoU with it is at least ``vote_iou`` (itself included, the
    suppressed boxes too), each weighted by the logistic of its score (a logit's probability; any score rises with
    it). ``(len(kept), 4)`` float64; ``vote_iou <= 0`` returns the kept boxes as they are."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    kept_boxes = boxes[list(kept)]
    if vote_iou <= 0 or len(kept_boxes) == 0:
        return kept_boxes
    weights = 1.0 / (1.0 + np.exp(-np.asarray(scores, dtype=np.float64)))
    voters = (iou_matrix(kept_boxes, boxes) >= vote_iou) * weights[None, :]  # (K, N); a box votes for itself
    return voters @ boxes / voters.sum(axis=1, keepdims=True)


def window_step(search: Mapping[str, Any], j: int, trigger: int) -> dict[str, Any]:
    """Step ``j`` of ``search`` as a one-step search that triggered there: its window, its Q-values, its
    predicted IoU and its region score (None where the record has none), and ``trigger`` as its action, so that a
    detection score of :data:`~zoomrl.eval.detection.DETECTION_SCORES` scores the box as a terminal region."""
    qs = search.get("q_values") or []
    out: dict[str, Any] = {
        "windows": [search["windows"][j]],
        "actions": [trigger],
        "q_values": [qs[j] if j < len(qs) else None],
    }
    for field in ("predicted_iou", "region_score"):
        values = search.get(field) or []
        out[field] = [values[j] if j < len(values) else None]
    return out


def window_score(
    search: Mapping[str, Any], j: int, trigger: int, score: str | WindowScore = "trigger_q"
) -> float | None:
    """The score of window ``j`` of ``search`` as if the agent had triggered there: ``score`` (a name of
    :data:`~zoomrl.eval.detection.DETECTION_SCORES`, or such a function) applied to :func:`window_step`; None when
    the record has no value for it (no Q-values, no IoU head)."""
    fn = DETECTION_SCORES[score] if isinstance(score, str) else score
    return fn(window_step(search, j, trigger), 0)


def attended_records(
    records: Sequence[Mapping[str, Any]],
    trigger: int,
    nms_iou: float = 0.0,
    score: str | WindowScore = "trigger_q",
    vote_iou: float = 0.0,
    max_boxes: int = 0,
) -> list[dict[str, Any]]:
    """The records with each analysed box as a triggered one-step search scored by ``score`` at that box
    (:func:`window_score`; by default ``Q[trigger]``; a box it cannot score scores 0), after non-maximum
    suppression at ``nms_iou`` per image, each kept box then moved by :func:`box_vote` at ``vote_iou`` (0: not
    moved). A box is its window moved by the box regressor where the search has ``refined`` windows
    (``--box-regression``). ``max_boxes`` > 0 keeps only each image's first that many analysed boxes, in visit
    order (a budget of boxes per image)."""
    out = []
    for record in records:
        boxes, scores, actions = [], [], []
        for search in record.get("searches") or []:
            refined = search.get("refined") or []  # the box regressor's move of each window, if the run has one
            for j, (window, action) in enumerate(zip(search.get("windows") or [], search.get("actions") or [])):
                if 0 < max_boxes <= len(boxes):  # the image's budget is spent: score no more boxes
                    break
                value = window_score(search, j, trigger, score)
                boxes.append([float(v) for v in (refined[j] if j < len(refined) else window)])
                scores.append(float(value) if value is not None else 0.0)
                actions.append(int(action))
        keep = sorted(nms(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(scores), nms_iou))
        voted = box_vote(np.asarray(boxes, dtype=np.float64), np.asarray(scores), keep, vote_iou).tolist()
        searches = [
            {
                "windows": [box],
                "actions": [actions[i]],
                "q_values": None,
                "triggered": True,
                "box": box,
                "score": scores[i],
                "steps": 1,
            }
            for i, box in zip(keep, voted)
        ]
        out.append(
            {
                **{k: v for k, v in record.items() if k != "searches"},
                "searches": searches,
                "windows_analysed": len(boxes),
            }
        )
    return out


def attended_by_budget(
    records: Sequence[Mapping[str, Any]],
    trigger: int,
    nms_iou: float,
    score: str | WindowScore,
    vote_iou: float = 0.0,
    budgets: Iterable[int] = AAR_BUDGETS,
) -> dict[str, dict[str, Any]]:
    """``{str(n): evaluate(attended_records(..., max_boxes=n))}`` for each ``n`` of ``budgets``: the AAR AP when
    each image may report only its first ``n`` analysed boxes, where a search that looks in the right places
    first gains over one that merely looks in many."""
    return {
        str(int(n)): evaluate(attended_records(records, trigger, nms_iou, score, vote_iou, int(n))) for n in budgets
    }


def attended_scores(records: Sequence[Mapping[str, Any]], trigger: int) -> list[str]:
    """The names of :data:`ATTENDED_SCORES` that every analysed box of ``records`` can be scored by (none without
    a box; ``predicted_iou`` only from a network with the IoU head)."""
    steps = [
        (search, j)
        for record in records
        for search in record.get("searches") or []
        for j in range(min(len(search.get("windows") or []), len(search.get("actions") or [])))
    ]
    if not steps:
        return []
    return [name for name in ATTENDED_SCORES if all(window_score(s, j, trigger, name) is not None for s, j in steps)]


def attended_by_score(
    records: Sequence[Mapping[str, Any]],
    trigger: int,
    nms_iou: float = 0.0,
    scores: Iterable[str] | None = None,
    vote_iou: float = 0.0,
) -> dict[str, dict[str, Any]]:
    """``{score: evaluate(attended_records(records, trigger, nms_iou, score, vote_iou))}`` for each of ``scores``
    (default: every one the records support, :func:`attended_scores`, in :data:`ATTENDED_SCORES`' order)."""
    names = attended_scores(records, trigger) if scores is None else list(scores)
    return {name: evaluate(attended_records(records, trigger, nms_iou, name, vote_iou)) for name in names}


def recall_vs_proposals(
    records: Sequence[Mapping[str, Any]],
    grid: Iterable[int] = PROPOSAL_GRID,
    iou_threshold: float = 0.5,
    moved: bool = False,
) -> dict[str, float]:
    """``{str(k): recall}``: the share of non-difficult objects with IoU >= ``iou_threshold`` with one of the first
    ``k`` analysed boxes of their image (visit order), for each ``k`` of ``grid`` (0.0 without objects). With
    ``moved``, each box is its window moved by the box regressor (``refined``, where the search has it): the box a
    detection there would report."""
    grid = tuple(int(k) for k in grid)
    first_cover: list[float] = []  # per object: 1-based index of the first covering box, inf if none
    for record in records:
        gts = [g for g in record.get("ground_truth") or [] if not g.get("difficult", False)]
        if not gts:
            continue
        gt = np.array([g["box"] for g in gts], dtype=np.float64).reshape(-1, 4)
        boxes = [
            (s.get("refined") or [])[j] if moved and j < len(s.get("refined") or []) else w
            for s in record.get("searches") or []
            for j, w in enumerate(s.get("windows") or [])
        ]
        if not boxes:
            first_cover.extend([np.inf] * len(gt))
            continue
        covered = iou_matrix(np.asarray(boxes, dtype=np.float64), gt) >= iou_threshold
        for j in range(len(gt)):
            hits = np.flatnonzero(covered[:, j])
            first_cover.append(float(hits[0] + 1) if len(hits) else np.inf)
    firsts = np.asarray(first_cover, dtype=np.float64)
    return {str(k): float((firsts <= k).mean()) if len(firsts) else 0.0 for k in grid}


__all__ = [
    "AAR_BUDGETS",
    "ATTENDED_SCORES",
    "attended_by_budget",
    "PROPOSAL_GRID",
    "attended_by_score",
    "attended_records",
    "attended_scores",
    "box_vote",
    "nms",
    "recall_vs_proposals",
    "window_score",
    "window_step",
]
