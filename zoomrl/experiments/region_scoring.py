"""The region classifier of the detecting families (``--region-scorer``): trained before the agent on boxes sampled
on the training images, it scores every window the agent visits (the ``region_score`` detection score: of the
terminal regions in both families, of all attended regions in the active one).

The classifier is :class:`zoomrl.agents.region_scorer.RegionScorer`, R-CNN's per-class linear detector. Its boxes
come from :func:`zoomrl.core.geometry.sample_boxes`, each described as the agent sees a window (``view``: the
active family's R-CNN context, :func:`zoomrl.envs.active.context_window`; the hierarchy's window itself) by the
run's own feature model, on the image as loaded. A visited window is scored the same way after the agent's run
(:func:`score_records`): as R-CNN scores a proposal, on the clean image, whatever the agent painted over found
objects; suppression (the active family's AAR) and the run's validation deal with windows found twice.

It is saved once per run as ``region_scorer.npz`` in the run folder (:func:`scorer_path`); testing reads it from the
tested checkpoint's folder. The trainee's side is :class:`zoomrl.experiments.dqn_trainee.DQNTrainee`'s
``init_fresh`` and ``region_scorer``; the tester's, :meth:`zoomrl.experiments.dqn_test.DQNTester.scored_records`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoomrl.agents.region_scorer import RegionScorer, fit_region_scorer
from zoomrl.core.geometry import iou_matrix, sample_boxes
from zoomrl.data.images import ImageStore, class_objects
from zoomrl.data.voc import VocImage
from zoomrl.vision.features import Request

SCORER_FILE = "region_scorer.npz"
CLEAN: tuple = ()
"""The mask key of an image with nothing painted on it (:class:`zoomrl.envs.search.SearchEpisode`'s start)."""

Box = tuple[float, float, float, float]
View = Callable[[Sequence[float], int, int], Box]
"""``(window, image width, image height) -> the box the feature model describes`` for a window."""

Log = Callable[[str], None]


def window_itself(window: Sequence[float], width: int, height: int) -> Box:
    """The hierarchy's view: the window as it is."""
    x1, y1, x2, y2 = (float(v) for v in window)
    return (x1, y1, x2, y2)


def describe_boxes(image: VocImage, pixels: np.ndarray, boxes: np.ndarray, features: Any, view: View) -> np.ndarray:
    """The descriptors ``(N, D)`` of ``boxes``, each seen through ``view``, on the clean ``pixels``: one call."""
    h, w = pixels.shape[:2]
    return features.describe([Request(image.key, CLEAN, pixels, view(b, w, h)) for b in boxes])


def region_examples(
    images: Sequence[VocImage],
    store: ImageStore,
    features: Any,
    class_object: str,
    seed: int,
    view: View,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(descriptors, ious)`` of the boxes :func:`~zoomrl.core.geometry.sample_boxes` draws on each image (seeded
    by ``(seed, image index)``), each box's IoU being its best with an object of ``class_object`` (difficult ones
    included: a box on one is not a negative)."""
    xs, ious = [], []
    for k, image in enumerate(images):
        pixels = store.get(image)
        objects, _ = class_objects(image, pixels, class_object)
        h, w = pixels.shape[:2]
        boxes = sample_boxes(w, h, objects, np.random.default_rng([int(seed), k, 7]))
        xs.append(describe_boxes(image, pixels, boxes, features, view))
        ious.append(iou_matrix(boxes, objects).max(axis=1) if len(objects) else np.zeros(len(boxes)))
        if progress is not None:
            progress(1)
    return np.concatenate(xs), np.concatenate(ious)


def train_scorer(
    images: Sequence[VocImage],
    store: ImageStore,
    features: Any,
    config: Any,
    path: Path,
    view: View,
    log: Log,
    progress: Callable[[int], None] | None = None,
) -> RegionScorer:
    """Fit the region classifier of ``config.class_object`` on ``images`` (seed ``config.seed``) and save it to
    ``path``; one summary line."""
    t0 = time.perf_counter()
    x, ious = region_examples(images, store, features, config.class_object, config.seed, view, progress)
    scorer = fit_region_scorer(x, ious, seed=int(config.seed))
    scorer.save(path)
    log(
        f"region scorer: {len(images)} images, {scorer.n_positives} positive and {scorer.n_negatives} negative "
        f"boxes of {len(ious)}, fitted in {time.perf_counter() - t0:.1f} s; saved {path}"
    )
    return scorer


def score_records(
    records: Sequence[dict[str, Any]],
    images: Sequence[VocImage],
    store: ImageStore,
    features: Any,
    scorer: RegionScorer,
    view: View,
) -> list[dict[str, Any]]:
    """``records`` (one per image of ``images``, matched by image id) with ``region_score`` added to every search:
    the classifier's score of each window it visited (the ``region_score`` detection score). The records are
    changed in place and returned."""
    by_id: Mapping[str, VocImage] = {im.image_id: im for im in images}
    for record in records:
        image = by_id[record["image_id"]]
        searches = record.get("searches") or []
        windows = [w for s in searches for w in (s.get("windows") or [])]
        if not windows:
            continue
        pixels = store.get(image)
        values = scorer.score(describe_boxes(image, pixels, np.asarray(windows, dtype=np.float64), features, view))
        start = 0
        for s in searches:
            n = len(s.get("windows") or [])
            s["region_score"] = [float(v) for v in values[start : start + n]]
            start += n
    return list(records)


def scorer_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / SCORER_FILE


__all__ = [
    "SCORER_FILE",
    "View",
    "describe_boxes",
    "region_examples",
    "score_records",
    "scorer_path",
    "train_scorer",
    "window_itself",
]
