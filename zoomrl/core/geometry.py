"""Box geometry and the fixed zoom hierarchy. Plain NumPy.

Convention used everywhere in zoomrl (and stated again in each docstring):

* A box is ``(x1, y1, x2, y2)`` in **pixel-edge coordinates**: 0-based, continuous, ``x`` to the right,
  ``y`` downwards. Pixel ``i`` spans ``[i, i + 1)``, so a box covering pixels 0..9 is ``(0, 0, 10, 10)`` and
  its width is ``x2 - x1`` (no ``+ 1``).
* Pascal VOC stores 1-based inclusive pixel indices; :func:`voc_to_box` converts them
  (``xmin - 1, ymin - 1, xmax, ymax``).
* Arrays of boxes have shape ``(N, 4)`` and dtype float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def as_boxes(boxes: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Return ``boxes`` as a float64 array of shape ``(N, 4)`` (``x1, y1, x2, y2``, pixel edges)."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1) if arr.size else arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"expected boxes of shape (N, 4) as (x1, y1, x2, y2), received shape {arr.shape}")
    return arr


def area(boxes: np.ndarray) -> np.ndarray:
    """Areas of ``(N, 4)`` boxes ``(x1, y1, x2, y2)`` in pixel edges; degenerate boxes have area 0."""
    b = as_boxes(boxes)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` (N, 4) with every box in ``b`` (M, 4).

    Boxes are ``(x1, y1, x2, y2)`` in pixel-edge coordinates (width ``x2 - x1``). Returns an ``(N, M)``
    float64 matrix; a pair whose union is empty has IoU 0.
    """
    a, b = as_boxes(a), as_boxes(b)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    union = area(a)[:, None] + area(b)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return out


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two single boxes ``(x1, y1, x2, y2)`` in pixel-edge coordinates."""
    return float(iou_matrix(np.asarray(a)[None], np.asarray(b)[None])[0, 0])


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip ``(N, 4)`` boxes ``(x1, y1, x2, y2)`` (pixel edges) to the image ``[0, width] x [0, height]``."""
    b = as_boxes(boxes).copy()
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, width)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, height)
    return b


def sample_boxes(
    width: int,
    height: int,
    objects: np.ndarray,
    rng: np.random.Generator,
    jitter_per_object: int = 24,
    random_boxes: int = 24,
    min_side: float = 8.0,
) -> np.ndarray:
    """Boxes ``(N, 4)`` to train a region classifier on, R-CNN style, in an image ``width`` x ``height`` holding
    ``objects`` ``(M, 4)``: the whole image, each object's box, ``jitter_per_object`` boxes around each object
    (centre moved by a normal of 0.25 of the object's side, each side scaled by ``exp`` of a normal of 0.35), and
    ``random_boxes`` boxes of uniform sides in ``[0.1, 1]`` of the image's at uniform places. Boxes are clipped to
    the image; those with a side under ``min_side`` pixels after clipping are dropped."""
    objects = as_boxes(objects).reshape(-1, 4)
    out = [np.array([[0.0, 0.0, float(width), float(height)]]), objects.astype(np.float64)]
    for x1, y1, x2, y2 in objects:
        w, h = x2 - x1, y2 - y1
        centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2]) + rng.normal(0.0, 0.25, (jitter_per_object, 2)) * [w, h]
        sides = np.exp(rng.normal(0.0, 0.35, (jitter_per_object, 2))) * [w, h]
        out.append(np.concatenate([centre - sides / 2, centre + sides / 2], axis=1))
    sides = rng.uniform(0.1, 1.0, (random_boxes, 2)) * [width, height]
    corner = rng.uniform(0.0, 1.0, (random_boxes, 2)) * ([width, height] - sides)
    out.append(np.concatenate([corner, corner + sides], axis=1))
    boxes = clip_boxes(np.concatenate(out), width, height)
    keep = (boxes[:, 2] - boxes[:, 0] >= min_side) & (boxes[:, 3] - boxes[:, 1] >= min_side)
    return boxes[keep]


def box_deltas(boxes: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """R-CNN's regression targets ``(N, 4)`` that take each of ``boxes`` to its ``targets`` (both ``(N, 4)``,
    ``x1, y1, x2, y2`` in pixel edges, positive sides): the centre's shift in units of the box's width and height,
    then the log of the width and height ratios, ``(dx, dy, log(w'/w), log(h'/h))``."""
    b, t = as_boxes(boxes), as_boxes(targets)
    bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    tw, th = t[:, 2] - t[:, 0], t[:, 3] - t[:, 1]
    dx = ((t[:, 0] + t[:, 2]) - (b[:, 0] + b[:, 2])) / (2 * bw)
    dy = ((t[:, 1] + t[:, 3]) - (b[:, 1] + b[:, 3])) / (2 * bh)
    return np.stack([dx, dy, np.log(tw / bw), np.log(th / bh)], axis=1)


def apply_deltas(boxes: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """The boxes ``(N, 4)`` that :func:`box_deltas` ``deltas`` ``(N, 4)`` make of ``boxes`` (its inverse)."""
    b, d = as_boxes(boxes), np.asarray(deltas, dtype=np.float64).reshape(-1, 4)
    bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    cx, cy = (b[:, 0] + b[:, 2]) / 2 + d[:, 0] * bw, (b[:, 1] + b[:, 3]) / 2 + d[:, 1] * bh
    w, h = bw * np.exp(d[:, 2]), bh * np.exp(d[:, 3])
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def voc_to_box(xmin: float, ymin: float, xmax: float, ymax: float) -> tuple[float, float, float, float]:
    """Convert VOC's 1-based inclusive pixel indices to a pixel-edge box ``(x1, y1, x2, y2)``."""
    return (float(xmin) - 1.0, float(ymin) - 1.0, float(xmax), float(ymax))


def box_to_voc(box: Sequence[float]) -> tuple[int, int, int, int]:
    """Convert a pixel-edge box ``(x1, y1, x2, y2)`` to VOC's 1-based inclusive ``(xmin, ymin, xmax, ymax)``."""
    x1, y1, x2, y2 = box
    return (int(round(x1)) + 1, int(round(y1)) + 1, int(round(x2)), int(round(y2)))


def children(window: Sequence[float], scale: float) -> np.ndarray:
    """The five subregions of ``window`` for the hierarchy of relative size ``scale``.

    ``window`` is ``(x1, y1, x2, y2)`` in pixel edges. Each child is ``scale`` times the parent in width and
    height. Rows follow the action order: 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right (each sharing
    the parent's corner of that name; ``y`` grows downwards) and 4 centre (sharing the parent's centre).
    ``scale = 1/2`` gives four disjoint quadrants plus the centre; ``scale = 3/4`` the overlapping hierarchy.
    Returns a float64 array of shape ``(5, 4)``.
    """
    if not 0.0 < scale < 1.0:
        raise ValueError(f"scale_subregion must lie in (0, 1), received {scale}")
    x1, y1, x2, y2 = (float(v) for v in window)
    cw, ch = scale * (x2 - x1), scale * (y2 - y1)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    return np.array(
        [
            (x1, y1, x1 + cw, y1 + ch),
            (x2 - cw, y1, x2, y1 + ch),
            (x1, y2 - ch, x1 + cw, y2),
            (x2 - cw, y2 - ch, x2, y2),
            (cx - cw / 2.0, cy - ch / 2.0, cx + cw / 2.0, cy + ch / 2.0),
        ],
        dtype=np.float64,
    )


def child(window: Sequence[float], action: int, scale: float) -> np.ndarray:
    """The subregion of ``window`` (``x1, y1, x2, y2``, pixel edges) chosen by move ``action`` in 0..4."""
    if not 0 <= int(action) < 5:
        raise ValueError(f"a move action lies in 0..4, received {action}")
    return children(window, scale)[int(action)]


def pixel_window(window: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """Round a pixel-edge window to integer pixel edges inside the image, at least one pixel wide and high.

    Used to crop (``image[y1:y2, x1:x2]``) and as the cache key of a window.
    """
    x1, y1, x2, y2 = (float(v) for v in window)
    ix1 = min(max(int(round(x1)), 0), width - 1)
    iy1 = min(max(int(round(y1)), 0), height - 1)
    ix2 = min(max(int(round(x2)), ix1 + 1), width)
    iy2 = min(max(int(round(y2)), iy1 + 1), height)
    return ix1, iy1, ix2, iy2
