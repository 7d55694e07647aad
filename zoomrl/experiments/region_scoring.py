"""The region models of the detecting families, trained before the agent on boxes sampled on the training images:
the region classifier (``--region-scorer``), which scores every window the agent visits (the ``region_score``
detection score: of the terminal regions in both families, of all attended regions in the active one), and the box
regressor (``--box-regression``), which moves every visited window onto the object it sees (``refined``: the box a
detection there reports).

The classifier is :class:`zoomrl.agents.region_scorer.RegionScorer`, R-CNN's per-class linear detector; the
regressor :class:`zoomrl.agents.box_regressor.BoxRegressor`, R-CNN's per-class box regression. Their boxes
come from :func:`zoomrl.core.geometry.sample_boxes`, each described as the agent sees a window (``view``: the
active family's R-CNN context, :func:`zoomrl.envs.active.context_window`; the hierarchy's window itself) by the
run's own feature model, on the image as loaded. A visited window is scored and moved the same way after the
agent's run (:func:`score_records`): as R-CNN treats a proposal, on the clean image, whatever the agent painted over
found objects; suppression (the active family's AAR) and the run's validation deal with windows found twice.

They are saved once per run as ``region_scorer.npz`` and ``box_regressor.npz`` in the run folder (:func:`scorer_path`,
:func:`regressor_path`); testing reads them from the tested checkpoint's folder. The trainee's side is
:class:`zoomrl.experiments.dqn_trainee.DQNTrainee`'s ``init_fresh`` and ``region_models``; the tester's,
:meth:`zoomrl.experiments.dqn_test.DQNTester.scored_records`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from zoomrl.agents.box_regressor import ALPHA, MIN_IOU, BoxRegressor, fit_box_regressor
from zoomrl.agents.region_scorer import RegionScorer, fit_region_scorer
from zoomrl.core.geometry import iou_matrix, sample_boxes
from zoomrl.data.images import ImageStore, class_objects
from zoomrl.data.voc import VocImage
from zoomrl.vision.features import Request

SCORER_FILE = "region_scorer.npz"
REGRESSOR_FILE = "box_regressor.npz"
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


class RegionSamples(NamedTuple):
    """The boxes :func:`~zoomrl.core.geometry.sample_boxes` draws on some images, for the region models."""

    descriptors: np.ndarray
    """``(N, D)``: each box as the agent's feature model sees it."""
    ious: np.ndarray
    """``(N,)``: each box's best IoU with an object of the class (0 in an image without one)."""
    boxes: np.ndarray
    """``(N, 4)``: the boxes."""
    objects: np.ndarray
    """``(N, 4)``: the object of each box's best IoU (the box itself in an image without one)."""
    image: np.ndarray
    """``(N,)``: the index of each box's image among the images sampled (folds of :func:`refined_ious`)."""


def region_samples(
    images: Sequence[VocImage],
    store: ImageStore,
    features: Any,
    class_object: str,
    seed: int,
    view: View,
    progress: Callable[[int], None] | None = None,
) -> RegionSamples:
    """The boxes :func:`~zoomrl.core.geometry.sample_boxes` draws on each image (seeded by ``(seed, image
    index)``), described through ``view``, with the object each overlaps most of ``class_object`` (difficult ones
    included: a box on one is not a negative). ``features`` None: the boxes alone, with empty ``(N, 0)``
    descriptors (what the regressor's bounds need, ``scripts/regressor_bounds.py``)."""
    xs, ious, boxes_out, targets, index = [], [], [], [], []
    for k, image in enumerate(images):
        pixels = store.get(image)
        objects, _ = class_objects(image, pixels, class_object)
        h, w = pixels.shape[:2]
        boxes = sample_boxes(w, h, objects, np.random.default_rng([int(seed), k, 7]))
        described = features is not None
        xs.append(describe_boxes(image, pixels, boxes, features, view) if described else np.zeros((len(boxes), 0)))
        boxes_out.append(boxes)
        if len(objects):
            overlaps = iou_matrix(boxes, objects)
            ious.append(overlaps.max(axis=1))
            targets.append(np.asarray(objects, dtype=np.float64).reshape(-1, 4)[overlaps.argmax(axis=1)])
        else:
            ious.append(np.zeros(len(boxes)))
            targets.append(boxes)
        index.append(np.full(len(boxes), k, dtype=np.int64))
        if progress is not None:
            progress(1)
    return RegionSamples(*(np.concatenate(v) for v in (xs, ious, boxes_out, targets, index)))


def refined_ious(
    samples: RegionSamples, folds: int = 2, alpha: float = ALPHA, min_iou: float = MIN_IOU, clamp: bool = True
) -> np.ndarray:
    """``(N,)``: each sampled box's best IoU with an object of its image once moved by a box regressor that did not
    see its image: the images are split into ``folds`` by index (image ``k`` in fold ``k % folds``) and each
    fold's boxes are moved by :func:`~zoomrl.agents.box_regressor.fit_box_regressor` fitted on the other folds'
    (``alpha``, ``min_iou``, ``clamp``: as the run's own regressor). A regressor fitted on the box itself would
    land on its object more often than it will on an unseen image. Boxes of an image without an object keep 0.
    ValueError when there are fewer than two images, or a fold's complement has fewer than two boxes to fit on."""
    n_images = int(samples.image.max()) + 1 if len(samples.image) else 0
    if n_images < 2 or folds < 2:
        raise ValueError(f"refined IoUs: need at least 2 images and 2 folds; got {n_images} and {folds}")
    fold = samples.image % folds
    out = np.zeros(len(samples.ious), dtype=np.float64)
    for f in range(folds):
        held = np.flatnonzero(fold == f)
        if not len(held):
            continue
        fit = fold != f
        regressor = fit_box_regressor(
            samples.descriptors[fit], samples.ious[fit], samples.boxes[fit], samples.objects[fit], alpha, min_iou, clamp
        )
        # Unclipped: the move's IoU with the object, as the box regression check measures it.
        moved = regressor.refine(samples.boxes[held], samples.descriptors[held], 10**9, 10**9)
        for k in np.unique(samples.image[held]):
            rows = samples.image[held] == k
            in_image = (samples.image == k) & (samples.ious > 0)
            if not in_image.any():
                continue  # no object: the boxes keep 0
            objects = np.unique(samples.objects[in_image], axis=0)
            out[held[rows]] = iou_matrix(moved[rows], objects).max(axis=1)
    return out


def train_region_models(
    images: Sequence[VocImage],
    store: ImageStore,
    features: Any,
    config: Any,
    run_dir: Path,
    view: View,
    log: Log,
    progress: Callable[[int], None] | None = None,
) -> tuple[RegionScorer | None, BoxRegressor | None]:
    """The region classifier (``config.region_scorer``) and the box regressor (``config.box_regression``) of
    ``config.class_object``, each fitted on the same boxes sampled on ``images`` (seed ``config.seed``) and saved
    in ``run_dir`` (:func:`scorer_path`, :func:`regressor_path`); one summary line each."""
    t0 = time.perf_counter()
    samples = region_samples(images, store, features, config.class_object, config.seed, view, progress)
    scorer = regressor = None
    if getattr(config, "region_scorer", False):
        # "refined": label a box by where the regressor will move it, the box a detection there reports.
        target = getattr(config, "region_labels", "window")
        ious = refined_ious(samples) if target == "refined" else samples.ious
        scorer = fit_region_scorer(samples.descriptors, ious, seed=int(config.seed))
        scorer.save(scorer_path(run_dir))
        log(
            f"region scorer: {len(images)} images, {scorer.n_positives} positive and {scorer.n_negatives} negative "
            f"boxes ({target}) of {len(samples.ious)}, fitted in {time.perf_counter() - t0:.1f} s; saved "
            f"{scorer_path(run_dir)}"
        )
    if getattr(config, "box_regression", False):
        regressor = fit_box_regressor(samples.descriptors, samples.ious, samples.boxes, samples.objects)
        regressor.save(regressor_path(run_dir))
        log(
            f"box regressor: {regressor.n_examples} boxes of {len(samples.ious)} at IoU >= {MIN_IOU}, "
            f"{time.perf_counter() - t0:.1f} s with the boxes' descriptors; saved {regressor_path(run_dir)}"
        )
    return scorer, regressor


def score_records(
    records: Sequence[dict[str, Any]],
    images: Sequence[VocImage],
    store: ImageStore,
    features: Any,
    scorer: RegionScorer | None,
    view: View,
    regressor: BoxRegressor | None = None,
) -> list[dict[str, Any]]:
    """``records`` (one per image of ``images``, matched by image id) with, in every search, ``region_score``
    (``scorer``'s score of each window it visited: the ``region_score`` detection score) and ``refined`` (each
    window moved by ``regressor``: the box a detection there reports, :mod:`zoomrl.eval.detection`), for those
    given. The records are changed in place and returned."""
    if scorer is None and regressor is None:
        return list(records)
    by_id: Mapping[str, VocImage] = {im.image_id: im for im in images}
    for record in records:
        image = by_id[record["image_id"]]
        searches = record.get("searches") or []
        windows = np.asarray([w for s in searches for w in (s.get("windows") or [])], dtype=np.float64)
        if not len(windows):
            continue
        pixels = store.get(image)
        x = describe_boxes(image, pixels, windows, features, view)
        values = scorer.score(x) if scorer is not None else None
        refined = regressor.refine(windows, x, pixels.shape[1], pixels.shape[0]) if regressor is not None else None
        start = 0
        for s in searches:
            n = len(s.get("windows") or [])
            if values is not None:
                s["region_score"] = [float(v) for v in values[start : start + n]]
            if refined is not None:
                s["refined"] = [[float(v) for v in box] for box in refined[start : start + n]]
            start += n
    return list(records)


def scorer_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / SCORER_FILE


def regressor_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / REGRESSOR_FILE


__all__ = [
    "REGRESSOR_FILE",
    "SCORER_FILE",
    "RegionSamples",
    "View",
    "describe_boxes",
    "refined_ious",
    "region_samples",
    "regressor_path",
    "score_records",
    "scorer_path",
    "train_region_models",
    "window_itself",
]
