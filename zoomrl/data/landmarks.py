"""Landmark-regression data and its metric (plain NumPy + Pillow; no Keras).

A :class:`LandmarkSet` holds square images, one landmark per image (pixel coordinates ``(x, y)``, pixel edges as in
:mod:`zoomrl.core.geometry`), and the length that normalises a distance (the object's box height, in pixels).

* :func:`digit_centroids`: the variant's sanity check: one digit placed at random on a canvas (the translated
  digits, 60x60 and no clutter by default); the landmark is the digit's ink centroid
  (:func:`zoomrl.data.digits.ink_centroid`) and the normaliser the digit's box height (28 px).
* :func:`voc_landmarks`: any VOC-layout folder: the landmark is the centre of the largest box of the chosen class
  (all classes when None), the normaliser that box's height. Each photo is letterboxed onto a ``size`` x ``size``
  canvas (scaled so its longer side is ``size``, aspect ratio kept, centred, black borders), so distances keep their
  proportions; boxes and landmarks are scaled with it.

Augmentation (:func:`augment_landmarks`): left-right flips and integer shifts of whole images, the landmark and
box moved with the pixels; the normaliser (the object's height) does not change under either.

Metric: the normalised distance ``d = || predicted - true ||_2 / box height`` (pixels / pixels), and the
detection rate at threshold ``t``: the fraction of images with ``d <= t`` (:data:`THRESHOLDS` as in the
variant's Table 1).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

THRESHOLDS = (0.02, 0.04, 0.06, 0.08, 0.10)


@dataclass
class LandmarkSet:
    """``images (N, S, S, C)`` float32 in [0, 1]; ``points (N, 2)`` pixel ``(x, y)``; ``norms (N,)`` box heights in
    pixels; ``boxes (N, 4)`` pixel edges; ``ids`` one name per image."""

    images: np.ndarray
    points: np.ndarray
    norms: np.ndarray
    boxes: np.ndarray
    ids: list[str]

    def __len__(self) -> int:
        return len(self.images)

    @property
    def size(self) -> int:
        return int(self.images.shape[1])

    def targets(self) -> np.ndarray:
        """``(N, 3)`` rows ``(x, y, scale)``: the landmark in [-1, 1] units and ``scale = (S / 2) / norm``, the factor
        that turns a distance in [-1, 1] units into a normalised distance."""
        return landmark_targets(self.points, self.norms, self.size)


def to_unit(points: np.ndarray, size: int) -> np.ndarray:
    """Pixel coordinates on a ``size``-wide square -> [-1, 1] units."""
    return np.asarray(points, dtype=np.float64) / size * 2.0 - 1.0


def to_pixels(units: np.ndarray, size: int) -> np.ndarray:
    """[-1, 1] units -> pixel coordinates on a ``size``-wide square."""
    return (np.asarray(units, dtype=np.float64) + 1.0) / 2.0 * size


def landmark_targets(points: np.ndarray, norms: np.ndarray, size: int) -> np.ndarray:
    norms = np.asarray(norms, dtype=np.float64)
    if np.any(norms <= 0):
        raise ValueError("landmark normalisers (box heights) must be positive")
    unit = to_unit(points, size)
    return np.concatenate([unit, (size / 2.0 / norms)[:, None]], axis=1).astype(np.float32)


def normalised_distances(pred_points: np.ndarray, true_points: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """``|| pred - true ||_2 / norm`` per image (all in pixels)."""
    diff = np.asarray(pred_points, dtype=np.float64) - np.asarray(true_points, dtype=np.float64)
    return np.sqrt((diff**2).sum(axis=1)) / np.asarray(norms, dtype=np.float64)


def detection_rates(distances: np.ndarray, thresholds: Sequence[float] = THRESHOLDS) -> dict[str, float]:
    """``{"0.02": fraction of distances <= 0.02, ...}``."""
    d = np.asarray(distances, dtype=np.float64)
    if d.size == 0:
        raise ValueError("detection_rates needs at least one distance")
    return {f"{t:.2f}": float(np.mean(d <= t)) for t in thresholds}


def landmark_scores(pred_units: np.ndarray, points: np.ndarray, norms: np.ndarray, size: int) -> dict[str, Any]:
    """Detection rates and the mean and median normalised distance of landmarks predicted in [-1, 1] units on
    ``size``-wide squares, against pixel ``points`` normalised by ``norms``."""
    d = normalised_distances(to_pixels(pred_units, size), points, norms)
    return {
        "detection_rate": detection_rates(d),
        "mean_distance": float(d.mean()),
        "median_distance": float(np.median(d)),
    }


def digit_centroids(
    images: np.ndarray,
    labels: np.ndarray,
    size: int = 60,
    n_pieces: int = 0,
    piece: int = 8,
    n: int | None = None,
    seed: int = 0,
) -> LandmarkSet:
    """Digits placed on canvases (:func:`zoomrl.data.digits.cluttered_canvases`) with their ink centroids."""
    from zoomrl.data.digits import cluttered_canvases, ink_centroid

    canvases, _, boxes, pick = cluttered_canvases(
        images, labels, size=size, n_pieces=n_pieces, piece=piece, n=n, seed=seed, return_indices=True
    )
    points = ink_centroid(np.asarray(images)[pick], boxes)
    norms = (boxes[:, 3] - boxes[:, 1]).astype(np.float32)
    return LandmarkSet(canvases[..., None], points, norms, boxes, [f"digit{i:05d}" for i in range(len(canvases))])


def flip_shift(
    images: np.ndarray, points: np.ndarray, boxes: np.ndarray, flips: np.ndarray, shifts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply given transforms: image ``i`` is flipped left-right when ``flips[i]``, then moved by the integer
    ``shifts[i] = (dx, dy)`` pixels (pixel ``(x, y)`` goes to ``(x + dx, y + dy)``; zeros fill in, what leaves is
    lost). In pixel-edge coordinates a flip sends ``x`` to ``W - x`` (pixel ``k``, spanning ``[k, k + 1)``, goes to
    ``W - 1 - k``). Points ``(N, 2)`` and boxes ``(N, 4)`` move with the pixels (boxes are not clipped)."""
    images = np.asarray(images)
    n, h, w = images.shape[:3]
    points = np.array(points, dtype=np.float32)
    boxes = np.array(boxes, dtype=np.float32)
    flips = np.asarray(flips, dtype=bool)
    shifts = np.asarray(shifts, dtype=np.int64)
    out = np.zeros_like(images)
    for i in range(n):
        img = images[i, :, ::-1] if flips[i] else images[i]
        if flips[i]:
            points[i, 0] = w - points[i, 0]
            boxes[i, [0, 2]] = w - boxes[i, [2, 0]]
        dx, dy = int(shifts[i, 0]), int(shifts[i, 1])
        # destination rows/columns [d0, d1) receive source rows/columns [d0 - d, d1 - d)
        ys, yd = slice(max(0, -dy), min(h, h - dy)), slice(max(0, dy), min(h, h + dy))
        xs, xd = slice(max(0, -dx), min(w, w - dx)), slice(max(0, dx), min(w, w + dx))
        out[i, yd, xd] = img[ys, xs]
        points[i] += (dx, dy)
        boxes[i] += (dx, dy, dx, dy)
    return out, points, boxes


def augment_landmarks(
    images: np.ndarray,
    points: np.ndarray,
    boxes: np.ndarray,
    rng: np.random.Generator,
    flip: bool = True,
    max_shift: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random :func:`flip_shift`: each image flipped with probability 1/2 (when ``flip``), then shifted by integers
    ``dx, dy`` drawn uniformly from ``[-max_shift, max_shift]``, narrowed per image so that its landmark stays on
    the canvas (``0 <= x <= W``). Draws the flips (``n`` uniforms) then the shifts from ``rng``."""
    images = np.asarray(images)
    h, w = images.shape[1:3]
    flips, shifts = draw_flip_shift(points, w, h, rng, flip, max_shift)
    return flip_shift(images, points, boxes, flips, shifts)


def draw_flip_shift(
    points: np.ndarray, width: int, height: int, rng: np.random.Generator, flip: bool = True, max_shift: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The random transforms of :func:`augment_landmarks` for landmarks ``points (N, 2)`` on ``width`` x ``height``
    canvases: ``flips (N,)`` bool and ``shifts (N, 2)`` int64, the flips drawn first (``N`` uniforms)."""
    if max_shift < 0:
        raise ValueError(f"max_shift must be non-negative, received {max_shift}")
    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    flips = rng.random(n) < 0.5 if flip else np.zeros(n, bool)
    x = np.where(flips, width - points[:, 0], points[:, 0])
    shifts = np.zeros((n, 2), np.int64)
    if max_shift:
        size = np.array([width, height], np.float64)
        here = np.stack([x, points[:, 1]], axis=1)
        low = np.maximum(-max_shift, -np.floor(here)).astype(np.int64)
        high = np.minimum(max_shift, np.floor(size - here)).astype(np.int64)
        shifts = rng.integers(low, high + 1)
    return flips, shifts


def letterbox(pixels: np.ndarray, size: int) -> tuple[np.ndarray, float, float, float]:
    """``(H, W, 3)`` uint8 -> ``(size, size, 3)`` float32 in [0, 1], plus ``(scale, offset_x, offset_y)`` such that a
    pixel coordinate ``p`` of the photo lands at ``p * scale + offset``."""
    from PIL import Image

    h, w = pixels.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    ox, oy = (size - nw) // 2, (size - nh) // 2
    resized = np.asarray(Image.fromarray(pixels).resize((nw, nh), Image.BILINEAR), np.float32) / 255.0
    out = np.zeros((size, size, 3), np.float32)
    out[oy : oy + nh, ox : ox + nw] = resized
    return out, nw / w, float(ox), float(oy)


def voc_landmarks(
    root: str | os.PathLike,
    image_set: str,
    class_name: str | None = None,
    size: int = 128,
    max_images: int | None = None,
) -> LandmarkSet:
    """Box-centre landmarks of a VOC-layout folder (see the module docstring). Images without a box of the class
    are skipped; none left is an error naming the folder."""
    from zoomrl.data.voc import load_dataset, load_rgb, same_class

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root}: no such VOC-layout folder (expected Annotations/, JPEGImages/, ImageSets/Main/)"
        )
    items = load_dataset([root], image_set, class_name=class_name, max_images=max_images)
    images, points, norms, boxes, ids = [], [], [], [], []
    for item in items:
        objs = [o for o in item.objects if class_name is None or same_class(o.name, class_name)]
        if not objs:
            continue
        x1, y1, x2, y2 = max((o.box for o in objs), key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
        if y2 <= y1 or x2 <= x1:
            continue
        canvas, scale, ox, oy = letterbox(load_rgb(item.image_path), size)
        box = np.array([x1 * scale + ox, y1 * scale + oy, x2 * scale + ox, y2 * scale + oy], np.float32)
        images.append(canvas)
        boxes.append(box)
        points.append([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        norms.append(box[3] - box[1])
        ids.append(item.image_id)
    if not images:
        what = f"class '{class_name}'" if class_name else "any object"
        raise ValueError(f"{root}: image set '{image_set}' has no image with {what}")
    return LandmarkSet(
        np.stack(images), np.asarray(points, np.float32), np.asarray(norms, np.float32), np.stack(boxes), ids
    )


__all__ = [
    "LandmarkSet",
    "THRESHOLDS",
    "augment_landmarks",
    "detection_rates",
    "digit_centroids",
    "draw_flip_shift",
    "flip_shift",
    "landmark_targets",
    "letterbox",
    "normalised_distances",
    "to_pixels",
    "to_unit",
    "voc_landmarks",
]
