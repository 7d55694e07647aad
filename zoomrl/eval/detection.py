"""Detection metrics for testing runs: Pascal VOC matching, average precision and search statistics.

Pure NumPy. The input is the list of per-image records described in ``docs/detections_format.md``.

Box convention (as everywhere in zoomrl, see :mod:`zoomrl.core.geometry`): a box is ``[x1, y1, x2, y2]`` in
**pixel-edge coordinates**, 0-based and continuous, ``x`` to the right, ``y`` downwards, width ``x2 - x1``
(no ``+ 1``). IoU is :func:`zoomrl.core.geometry.iou_matrix` on such boxes. (The official VOC devkit works on 1-based
inclusive pixel indices and adds ``+ 1`` to widths; on boxes converted with :func:`zoomrl.core.geometry.voc_to_box`
both give the same areas.)

Choices made where the protocol leaves room, stated once here:

* Detections are ranked by descending score with a **stable** sort (``np.argsort(-scores, kind="stable")``),
  so detections with equal scores keep their input order, which is the order of the records and, inside a
  record, the order of its searches. The MATLAB devkit's ``sort(-confidence)`` is stable too; the Python port's
  ``np.argsort(-confidence)`` (quicksort) makes no promise about ties.
* A detection counts as a match when ``IoU >= iou_threshold`` (as the MATLAB devkit's ``ovmax >= minoverlap``).
* Detections ignored because their best ground truth is ``difficult`` stay in the ranked arrays with
  ``tp = fp = 0`` (as in the devkit); where no detection has yet been counted, precision is defined as 0.
* With no positives (no non-difficult ground truth) recall is 0 everywhere and both APs are 0.0; with no
  detections both APs are 0.0. No function returns NaN.
* The 11-point thresholds are exactly ``k / 10`` for ``k = 0..10`` (so a recall of exactly 0.3 reaches the
  0.3 threshold; ``np.arange(0, 1.1, 0.1)`` in the Python devkit yields 0.30000000000000004 instead).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from zoomrl.core.geometry import as_boxes, iou_matrix

Record = Mapping[str, Any]

DEFAULT_WINDOW_GRID: tuple[int, ...] = (1, 2, 3, 5, 10, 20, 50, 100)


class Detection(NamedTuple):
    """One triggered search.

    ``box`` is ``[x1, y1, x2, y2]`` in pixel-edge coordinates (float64, shape ``(4,)``). ``window_count`` is the
    number of windows analysed in the image up to and including the window of this detection (the ``steps`` of
    the image's earlier searches plus this search's ``steps``); ``search_steps`` the windows analysed by this
    search alone; ``trigger_iou`` the best IoU of ``box`` with any ground truth of the image, difficult
    objects included (0.0 when the image has none).
    """

    image_id: str
    score: float
    box: np.ndarray
    window_count: int
    search_steps: int
    trigger_iou: float


class MatchResult(NamedTuple):
    """Outcome of :func:`match_detections`; every array is in ranked order (descending score, stable).

    ``tp`` / ``fp``: 0/1 int arrays (a detection ignored because of a difficult object has both 0).
    ``ignored``: 0/1 int array of those detections. ``scores``: float64 scores. ``matched_gt``: index, in its
    record's ``ground_truth`` list, of the object the detection was compared with when it counts as a true
    positive, else -1. ``order``: index of each ranked detection in the input ``detections`` sequence.
    ``n_positives``: number of non-difficult ground-truth objects over all records.
    """

    tp: np.ndarray
    fp: np.ndarray
    ignored: np.ndarray
    scores: np.ndarray
    matched_gt: np.ndarray
    order: np.ndarray
    n_positives: int


# ----------------------------------------------------------------------------------------------------------
# Reading records
# ----------------------------------------------------------------------------------------------------------


def _gt_boxes(record: Record) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth boxes ``(M, 4)`` (``x1, y1, x2, y2``, pixel edges) and their ``difficult`` flags ``(M,)``."""
    gts = record.get("ground_truth") or []
    boxes = as_boxes([g["box"] for g in gts]) if gts else np.zeros((0, 4), dtype=np.float64)
    difficult = np.array([bool(g.get("difficult", False)) for g in gts], dtype=bool)
    return boxes, difficult


def _search_steps(search: Mapping[str, Any]) -> int:
    """Windows analysed by one search: its ``steps``, or the length of ``windows`` when ``steps`` is absent."""
    steps = search.get("steps")
    if steps is None:
        steps = len(search.get("windows") or [])
    return int(steps)


def _search_score(search: Mapping[str, Any], image_id: str) -> float:
    score = search.get("score")
    if score is None:
        q_values = search.get("q_values")
        if q_values:
            # The Q-value of the action that ended the search (the trigger), whatever the action set.
            actions = search.get("actions") or []
            if actions:
                return float(q_values[-1][int(actions[-1])])
        raise ValueError(f"image {image_id!r}: a triggered search has no score and no q_values")
    return float(score)


def _search_box(search: Mapping[str, Any], image_id: str) -> np.ndarray:
    refined = search.get("refined")
    if refined:
        # A box regressor moved the search's windows (``--box-regression``): the detection is its last window moved.
        return as_boxes(refined[-1])[0]
    box = search.get("box")
    if box is None:
        windows = search.get("windows")
        if not windows:
            raise ValueError(f"image {image_id!r}: a triggered search has no box and no windows")
        box = windows[-1]
    return as_boxes(box)[0]


def _index_records(records: Sequence[Record]) -> dict[str, Record]:
    index: dict[str, Record] = {}
    for record in records:
        image_id = str(record["image_id"])
        if image_id in index:
            raise ValueError(f"image_id {image_id!r} appears in more than one record")
        index[image_id] = record
    return index


def count_positives(records: Sequence[Record]) -> int:
    """Number of non-difficult ground-truth objects over ``records``."""
    return int(sum(int((~_gt_boxes(r)[1]).sum()) for r in records))


def detections_from_records(records: Sequence[Record]) -> list[Detection]:
    """One :class:`Detection` per triggered search, in record order then search order.

    Boxes are ``[x1, y1, x2, y2]`` in pixel-edge coordinates. ``window_count`` accumulates the ``steps`` of the
    image's searches (earlier searches, untriggered ones included, plus this one).
    """
    detections: list[Detection] = []
    for record in records:
        image_id = str(record["image_id"])
        gt_boxes, _ = _gt_boxes(record)
        windows_so_far = 0
        for search in record.get("searches") or []:
            steps = _search_steps(search)
            windows_so_far += steps
            if not search.get("triggered", False):
                continue
            box = _search_box(search, image_id)
            trigger_iou = float(iou_matrix(box[None], gt_boxes).max()) if len(gt_boxes) else 0.0
            detections.append(
                Detection(
                    image_id=image_id,
                    score=_search_score(search, image_id),
                    box=box,
                    window_count=windows_so_far,
                    search_steps=steps,
                    trigger_iou=trigger_iou,
                )
            )
    return detections


# ----------------------------------------------------------------------------------------------------------
# Matching and average precision
# ----------------------------------------------------------------------------------------------------------


def match_detections(
    detections: Sequence[Detection], records: Sequence[Record], iou_threshold: float = 0.5
) -> MatchResult:
    """Match detections to ground truth with the Pascal VOC devkit protocol.

    Boxes are ``[x1, y1, x2, y2]`` in pixel-edge coordinates. Detections are ranked by descending score
    (stable sort: ties keep input order). In that order each detection is compared with the ground-truth object
    of its image (difficult ones included) of maximal IoU (first one on ties). If ``IoU >= iou_threshold``:
    a difficult object makes the detection ignored (neither TP nor FP); an unmatched object makes it a TP and
    is marked matched; an already matched object makes it a FP (duplicate). Below the threshold, or in an image
    without ground truth (or absent from ``records``), it is a FP. ``n_positives`` counts non-difficult objects.
    """
    index = _index_records(records)
    gt_cache = {image_id: _gt_boxes(record) for image_id, record in index.items()}
    matched_flags = {image_id: np.zeros(len(gt[0]), dtype=bool) for image_id, gt in gt_cache.items()}

    n = len(detections)
    scores_in = np.array([float(d.score) for d in detections], dtype=np.float64)
    order = np.argsort(-scores_in, kind="stable") if n else np.zeros(0, dtype=np.int64)
    tp = np.zeros(n, dtype=np.int64)
    fp = np.zeros(n, dtype=np.int64)
    ignored = np.zeros(n, dtype=np.int64)
    matched_gt = np.full(n, -1, dtype=np.int64)

    empty = (np.zeros((0, 4), dtype=np.float64), np.zeros(0, dtype=bool))
    for rank, det_index in enumerate(order):
        det = detections[int(det_index)]
        gt_boxes, difficult = gt_cache.get(det.image_id, empty)
        if len(gt_boxes) == 0:
            fp[rank] = 1
            continue
        overlaps = iou_matrix(np.asarray(det.box, dtype=np.float64)[None], gt_boxes)[0]
        best = int(np.argmax(overlaps))
        if overlaps[best] >= iou_threshold:
            if difficult[best]:
                ignored[rank] = 1
            elif not matched_flags[det.image_id][best]:
                tp[rank] = 1
                matched_gt[rank] = best
                matched_flags[det.image_id][best] = True
            else:
                fp[rank] = 1
        else:
            fp[rank] = 1

    return MatchResult(
        tp=tp,
        fp=fp,
        ignored=ignored,
        scores=scores_in[order] if n else np.zeros(0, dtype=np.float64),
        matched_gt=matched_gt,
        order=np.asarray(order, dtype=np.int64),
        n_positives=count_positives(records),
    )


def precision_recall(match: MatchResult) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative ``(recall, precision)`` along the ranking, one value per ranked detection.

    ``recall = cumTP / n_positives`` (0 everywhere when there are no positives) and
    ``precision = cumTP / (cumTP + cumFP)`` (0 where that denominator is still 0, i.e. only ignored detections
    so far).
    """
    ctp = np.cumsum(match.tp).astype(np.float64)
    cfp = np.cumsum(match.fp).astype(np.float64)
    if match.n_positives > 0:
        recall = ctp / float(match.n_positives)
    else:
        recall = np.zeros_like(ctp)
    denom = ctp + cfp
    precision = np.divide(ctp, denom, out=np.zeros_like(ctp), where=denom > 0)
    return recall, precision


def average_precision_voc07(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC2007 11-point interpolated AP.

    For each threshold ``t = k / 10``, ``k = 0..10``, take the maximum precision over points with
    ``recall >= t`` (0 when there is none) and average the 11 values. Empty input gives 0.0.
    """
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    if recall.size == 0:
        return 0.0
    total = 0.0
    for k in range(11):
        mask = recall >= k / 10.0
        total += float(precision[mask].max()) if mask.any() else 0.0
    return total / 11.0


def average_precision_area(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC2010+ AP: area under the precision envelope.

    Recall is padded with 0 in front and 1 at the end, precision with 0 at both ends; precision is made
    monotonically non-increasing from the right (each value becomes the maximum of itself and all later ones);
    AP is the sum of ``(recall[i + 1] - recall[i]) * precision[i + 1]`` over the indices where recall changes.
    Empty input gives 0.0.
    """
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    if recall.size == 0:
        return 0.0
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    changes = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1]))


# ----------------------------------------------------------------------------------------------------------
# Search statistics
# ----------------------------------------------------------------------------------------------------------


def recall_at_windows(
    detections: Sequence[Detection],
    match: MatchResult,
    records: Sequence[Record] | None = None,
    grid: Iterable[int] = DEFAULT_WINDOW_GRID,
) -> dict[int, float]:
    """For each ``k`` in ``grid``: the fraction of non-difficult objects found by a true positive whose
    ``window_count`` (windows analysed in its image up to and including it) is at most ``k``.

    ``records`` is used only to count the positives; without it ``match.n_positives`` is used. With no
    positives every value is 0.0.
    """
    n_positives = count_positives(records) if records is not None else match.n_positives
    tp_counts = np.array(
        [detections[int(i)].window_count for i, is_tp in zip(match.order, match.tp) if is_tp], dtype=np.int64
    )
    out: dict[int, float] = {}
    for k in grid:
        found = int((tp_counts <= int(k)).sum())
        out[int(k)] = found / n_positives if n_positives > 0 else 0.0
    return out


def windows_per_found_object(detections: Sequence[Detection], match: MatchResult) -> list[int]:
    """For each true positive, in ranked order, the windows analysed by the search that found it (its
    ``search_steps``; the paper's figure 8 counts these)."""
    return [int(detections[int(i)].search_steps) for i, is_tp in zip(match.order, match.tp) if is_tp]


def windows_histogram(values: Sequence[int], max_value: int | None = None) -> dict[int, int]:
    """Count of each integer value from 1 to ``max(values)`` (or ``max_value``), zeros included.

    Values below 1 get their own keys too, so nothing is dropped. Empty input gives ``{}``.
    """
    vals = [int(v) for v in values]
    if not vals and max_value is None:
        return {}
    top = max(vals + ([int(max_value)] if max_value is not None else []))
    low = min(vals + [1])
    counts = {k: 0 for k in range(low, top + 1)}
    for v in vals:
        counts[v] = counts.get(v, 0) + 1
    return counts


def trigger_iou_histogram(values: Sequence[float], bin_width: float = 0.1) -> dict[str, list[float] | list[int]]:
    """Histogram of trigger IoUs over ``[0, 1]`` in bins of ``bin_width`` (last bin closed).

    Returns ``{"edges": [...], "counts": [...]}`` with ``len(edges) == len(counts) + 1``.
    """
    n_bins = int(round(1.0 / bin_width))
    edges = np.arange(n_bins + 1, dtype=np.float64) / n_bins
    counts, _ = np.histogram(np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0), bins=edges)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def share_searches_without_trigger(records: Sequence[Record]) -> float:
    """Fraction of searches that ended without a trigger (0.0 when there are no searches)."""
    searches = [s for r in records for s in (r.get("searches") or [])]
    if not searches:
        return 0.0
    return sum(1 for s in searches if not s.get("triggered", False)) / len(searches)


def _windows_analysed(record: Record) -> int:
    value = record.get("windows_analysed")
    if value is None:
        return sum(_search_steps(s) for s in record.get("searches") or [])
    return int(value)


# ----------------------------------------------------------------------------------------------------------
# Everything at once
# ----------------------------------------------------------------------------------------------------------


def evaluate(
    records: Sequence[Record], iou_threshold: float = 0.5, grid: Iterable[int] = DEFAULT_WINDOW_GRID
) -> dict[str, Any]:
    """All metrics of a testing run as a JSON-serialisable dict (plain floats, ints, lists, dicts; no NaN).

    Boxes in ``records`` are ``[x1, y1, x2, y2]`` in pixel-edge coordinates. Keys: ``ap_voc07``, ``ap_area``,
    ``iou_threshold``, ``n_images``, ``n_positives``, ``n_detections``, ``n_true_positives``, ``recall``,
    ``precision``, ``scores`` (ranked order), ``recall_at_windows`` ({str(k): fraction}),
    ``windows_per_found_object`` (list of ints), ``median_windows_per_found_object`` (float, or None without
    true positives), ``windows_histogram`` ({str(k): count}), ``trigger_iou`` (list, one per detection in
    record order), ``trigger_iou_histogram`` ({"edges", "counts"}, bins of 0.1),
    ``share_searches_without_trigger``, ``n_searches``, ``mean_windows_per_image`` (0.0 without images).
    """
    grid = tuple(int(k) for k in grid)
    detections = detections_from_records(records)
    match = match_detections(detections, records, iou_threshold)
    recall, precision = precision_recall(match)
    per_object = windows_per_found_object(detections, match)
    trigger_ious = [float(d.trigger_iou) for d in detections]
    windows_per_image = [_windows_analysed(r) for r in records]
    return {
        "ap_voc07": float(average_precision_voc07(recall, precision)),
        "ap_area": float(average_precision_area(recall, precision)),
        "iou_threshold": float(iou_threshold),
        "n_images": len(records),
        "n_positives": int(match.n_positives),
        "n_detections": len(detections),
        "n_true_positives": int(match.tp.sum()),
        "recall": [float(v) for v in recall],
        "precision": [float(v) for v in precision],
        "scores": [float(v) for v in match.scores],
        "recall_at_windows": {str(k): float(v) for k, v in recall_at_windows(detections, match, records, grid).items()},
        "windows_per_found_object": per_object,
        "median_windows_per_found_object": float(np.median(per_object)) if per_object else None,
        "windows_histogram": {str(k): int(v) for k, v in windows_histogram(per_object).items()},
        "trigger_iou": trigger_ious,
        "trigger_iou_histogram": trigger_iou_histogram(trigger_ious),
        "share_searches_without_trigger": float(share_searches_without_trigger(records)),
        "n_searches": sum(len(r.get("searches") or []) for r in records),
        "mean_windows_per_image": float(np.mean(windows_per_image)) if windows_per_image else 0.0,
    }


def _fmt(value: Any, spec: str) -> str:
    if value is None:
        return "-"
    try:
        return format(float(value), spec)
    except (TypeError, ValueError):
        return "-"


def summary_table(named_results: Mapping[str, Mapping[str, Any]]) -> str:
    """Fixed-width text table of :func:`evaluate` results, one row per name.

    Columns: name, AP07, AP area, R@1, R@3, R@10 (recall within that many windows), median windows per found
    object, number of detections. Missing values print as ``-``.
    """
    names = [str(n) for n in named_results]
    name_width = max([len("name")] + [len(n) for n in names])
    header = (
        f"{'name':<{name_width}}  {'AP07':>6}  {'AP area':>7}  {'R@1':>6}  {'R@3':>6}  {'R@10':>6}"
        f"  {'med win/obj':>11}  {'n det':>6}"
    )
    lines = [header, "-" * len(header)]
    for name, result in named_results.items():
        raw = result.get("recall_at_windows") or {}
        rat = {str(k): v for k, v in raw.items()}
        n_det = result.get("n_detections")
        lines.append(
            f"{str(name):<{name_width}}  {_fmt(result.get('ap_voc07'), '.4f'):>6}"
            f"  {_fmt(result.get('ap_area'), '.4f'):>7}"
            f"  {_fmt(rat.get('1'), '.3f'):>6}  {_fmt(rat.get('3'), '.3f'):>6}  {_fmt(rat.get('10'), '.3f'):>6}"
            f"  {_fmt(result.get('median_windows_per_found_object'), '.1f'):>11}"
            f"  {(str(int(n_det)) if n_det is not None else '-'):>6}"
        )
    return "\n".join(lines)


def _last_q(search: dict[str, Any]) -> tuple[np.ndarray, int] | None:
    qs, actions = search.get("q_values"), search.get("actions")
    if not qs or not actions or qs[-1] is None:
        return None
    return np.asarray(qs[-1], dtype=np.float64), int(actions[-1])


def _trigger_q(search: dict[str, Any], index: int = 0) -> float | None:
    last = _last_q(search)
    return None if last is None else float(last[0][last[1]])


def _trigger_advantage(search: dict[str, Any], index: int = 0) -> float | None:
    last = _last_q(search)
    if last is None:
        return None
    q, action = last
    others = np.delete(q, action)
    return float(q[action] - others.max()) if len(others) else float(q[action])


def _trigger_probability(search: dict[str, Any], index: int = 0) -> float | None:
    last = _last_q(search)
    if last is None:
        return None
    q, action = last
    z = np.exp(q - q.max())
    return float(z[action] / z.sum())


def _predicted_iou(search: dict[str, Any], index: int = 0) -> float | None:
    values = search.get("predicted_iou")
    return None if not values or values[-1] is None else float(values[-1])


def _region_score(search: dict[str, Any], index: int = 0) -> float | None:
    values = search.get("region_score")
    return None if not values or values[-1] is None else float(values[-1])


def _trigger_order(search: dict[str, Any], index: int = 0) -> float | None:
    adv = _trigger_advantage(search)
    # -index plus the margin squashed into [0.1, 0.9]: an image's earlier trigger always ranks above its later ones.
    return None if adv is None else -float(index) + 0.5 + 0.4 * math.tanh(adv)


DETECTION_SCORES = {
    "trigger_q": _trigger_q,
    "trigger_advantage": _trigger_advantage,
    "trigger_probability": _trigger_probability,
    "predicted_iou": _predicted_iou,
    "trigger_order": _trigger_order,
    "region_score": _region_score,
}
"""Scores of a triggered window, from its search's record and ``index``, the number of triggers before it in its
image: from the Q-values of the last step, the trigger's Q-value (the paper's), its margin over the best other
action (how sure the agent is that stopping beats moving on) and its softmax probability; the IoU head's
prediction for the triggered window (agents trained with ``iou_weight > 0``); the trigger's order in its image
(the first trigger of every image above every second one, and so on), the margin ranking those of the same order:
later searches run on an image whose best object is already painted out; and a region classifier's score of the
window (``region_score`` in the record: the active family's ``--region-scorer``)."""

SCORE_FIELDS = {"predicted_iou": "predicted_iou", "region_score": "region_score"}
"""The record field a detection score reads, where it is not the Q-values."""


def available_scores(records: Sequence[Record]) -> list[str]:
    """The names of :data:`DETECTION_SCORES` that every triggered search of ``records`` can be scored by."""
    searches = [s for r in records for s in (r.get("searches") or [])]
    triggered = [s for s in searches if s.get("triggered")]
    out = []
    for name, fn in DETECTION_SCORES.items():
        field = SCORE_FIELDS.get(name, "q_values")
        if any(s.get(field) for s in searches) and all(fn(s) is not None for s in triggered):
            out.append(name)
    return out


def has_refined(records: Sequence[Record]) -> bool:
    """Whether a search of ``records`` holds the box regressor's ``refined`` windows."""
    return any(s.get("refined") for r in records for s in r.get("searches") or [])


def unrefined(records: Sequence[Record]) -> list[dict[str, Any]]:
    """Copies of ``records`` without the box regressor's ``refined`` windows: their detections are the windows the
    agent reported, as without ``--box-regression``."""
    return [
        {**r, "searches": [{k: v for k, v in s.items() if k != "refined"} for s in r.get("searches") or []]}
        for r in records
    ]


def ap_by_score(records: Sequence[Record]) -> dict[str, float]:
    """The AP (area) of ``records`` under every detection score they can be scored by (validation's figures)."""
    return {name: float(evaluate(rescored(records, name))["ap_area"]) for name in available_scores(records)}


def rescored(records: Sequence[Record], score: str) -> list[dict[str, Any]]:
    """Copies of ``records`` whose triggered searches are scored by ``DETECTION_SCORES[score]`` (searches it
    cannot score keep their scores)."""
    import copy

    fn = DETECTION_SCORES[score]
    out = copy.deepcopy(list(records))
    for record in out:
        index = 0  # triggers before this search in the image
        for search in record.get("searches") or []:
            if not search.get("triggered"):
                continue
            value = fn(search, index)
            index += 1
            if value is not None:
                search["score"] = value
    return out
