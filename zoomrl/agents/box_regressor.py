"""A box regressor: R-CNN's class-specific bounding-box regression over region descriptors, to move the windows an
agent reports onto the object.

Both detecting families report windows of a fixed grammar (the hierarchy's subregions, the active agent's box
deformations), and many of their triggers are near misses at IoU 0.3 to 0.5, which the evaluation counts as false
positives (README, "Detection score"). R-CNN met the same problem with its proposals and learnt, per class, a ridge
regression from a proposal's descriptor to :func:`zoomrl.core.geometry.box_deltas`: the shift of its centre and the
log-ratios of its sides that reach the object. This is that regression, fitted on the boxes sampled on the training
images (:func:`zoomrl.core.geometry.sample_boxes`) whose IoU with an object is at least ``min_iou``, the target
being that object (R-CNN: 0.6; ``MIN_IOU`` was chosen on validation, docs/active.md).

It sees arrays only; where boxes and descriptors come from is the family's business
(``zoomrl/experiments/region_scoring.py``). Plain NumPy (the ridge's closed form), saved as a ``.npz`` of plain
arrays, written atomically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoomrl.core.geometry import apply_deltas, as_boxes, box_deltas, clip_boxes

MIN_IOU = 0.5
ALPHA = 1e4
"""Ridge strength over standardised descriptors (``MIN_IOU`` and ``ALPHA`` chosen on validation: docs/active.md,
"The box regressor")."""


@dataclass
class BoxRegressor:
    """``deltas(x) = ((x - mean) / scale) @ weights + bias`` for descriptors ``x`` ``(N, D)``; ``weights`` is
    ``(D, 4)``, ``bias`` ``(4,)``: :func:`zoomrl.core.geometry.box_deltas`' four targets."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    n_examples: int = 0
    low: np.ndarray | None = None
    """``(4,)``: the smallest of each delta among the training targets; predictions are clamped to
    ``[low, high]`` (None: no clamp, a file written before the clamp). A descriptor unlike the training boxes'
    can otherwise send a window far past any move the regressor was fitted on, e.g. to a sliver at the image's
    border (docs/active.md, "The box regressor")."""
    high: np.ndarray | None = None
    """``(4,)``: the largest of each delta among the training targets (see ``low``)."""

    @property
    def descriptor_size(self) -> int:
        return int(self.weights.shape[0])

    def deltas(self, descriptors: np.ndarray) -> np.ndarray:
        """The predicted deltas ``(N, 4)`` of descriptors ``(N, D)``, clamped to ``[low, high]`` when the
        regressor has them."""
        x = np.asarray(descriptors, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.descriptor_size:
            raise ValueError(
                f"box regressor: expected descriptors (N, {self.descriptor_size}), received shape {x.shape}"
            )
        deltas = ((x - self.mean) / self.scale) @ self.weights + self.bias
        if self.low is not None and self.high is not None:
            deltas = np.clip(deltas, self.low, self.high)
        return deltas

    def refine(self, boxes: np.ndarray, descriptors: np.ndarray, width: int, height: int) -> np.ndarray:
        """``boxes`` ``(N, 4)`` moved by the deltas of their ``descriptors``, clipped to the image."""
        return clip_boxes(apply_deltas(as_boxes(boxes), self.deltas(descriptors)), width, height)

    def save(self, path: str | os.PathLike) -> None:
        from zoomrl.core.io import atomic_path

        arrays = {
            "mean": self.mean,
            "scale": self.scale,
            "weights": self.weights,
            "bias": self.bias,
            "count": np.array(self.n_examples),
        }
        if self.low is not None and self.high is not None:
            arrays["low"], arrays["high"] = self.low, self.high
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> BoxRegressor:
        """A saved regressor; a missing or damaged file is one line naming it."""
        from zoomrl.core.checkpoint import read_state
        from zoomrl.core.io import FileDamagedError

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such box regressor (train with --box-regression)")
        arrays = read_state(path)
        try:
            weights, bias = np.asarray(arrays["weights"]), np.asarray(arrays["bias"])
            if weights.ndim != 2 or weights.shape[1] != 4 or bias.shape != (4,):
                raise ValueError
            low, high = (np.asarray(arrays[k], dtype=np.float64) if k in arrays else None for k in ("low", "high"))
            if (low is None) != (high is None) or any(v is not None and v.shape != (4,) for v in (low, high)):
                raise ValueError
            return cls(arrays["mean"], arrays["scale"], weights, bias, int(arrays["count"]), low, high)
        except (KeyError, IndexError, TypeError, ValueError):
            raise FileDamagedError(
                f"{path}: not a box regressor (expected the arrays mean, scale, weights (D, 4), bias (4,), count, and "
                "optionally low and high (4,))"
            ) from None


def ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """``(weights, bias)`` minimising ``|x w + b - y|^2 + alpha |w|^2`` (the bias not penalised), by the closed
    form on centred data: the dual ``x^T (x x^T + alpha I)^-1 y`` when there are fewer rows than columns (R-CNN's
    case: a few thousand boxes of 25,088 features), the primal ``(x^T x + alpha I)^-1 x^T y`` otherwise."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    xm, ym = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - xm, y - ym
    n, d = xc.shape
    if n < d:
        w = xc.T @ np.linalg.solve(xc @ xc.T + alpha * np.eye(n), yc)
    else:
        w = np.linalg.solve(xc.T @ xc + alpha * np.eye(d), xc.T @ yc)
    return w, ym - xm @ w


def fit_box_regressor(
    descriptors: np.ndarray,
    ious: np.ndarray,
    boxes: np.ndarray,
    objects: np.ndarray,
    alpha: float = ALPHA,
    min_iou: float = MIN_IOU,
    clamp: bool = True,
) -> BoxRegressor:
    """The ridge regression from standardised ``descriptors`` ``(N, D)`` of ``boxes`` ``(N, 4)`` to the deltas
    that take each box to its object ``objects`` ``(N, 4)`` (the object of its best IoU, ``ious`` ``(N,)``), on the
    boxes with IoU >= ``min_iou``. The arguments are in the order of
    :class:`zoomrl.experiments.region_scoring.RegionSamples`. With ``clamp``, its predictions stay within the range
    of these boxes' targets (``low``, ``high``). Needs at least two such boxes (ValueError otherwise)."""
    x = np.asarray(descriptors, dtype=np.float64)
    used = np.asarray(ious, dtype=np.float64) >= min_iou
    if int(used.sum()) < 2:
        raise ValueError(f"box regressor: needs at least 2 boxes with IoU >= {min_iou}; got {int(used.sum())}")
    x = x[used]
    mean = x.mean(axis=0)
    # A constant feature keeps scale 1: it then adds nothing, and no NaN.
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-6, scale, 1.0)
    targets = box_deltas(as_boxes(boxes)[used], as_boxes(objects)[used])
    weights, bias = ridge((x - mean) / scale, targets, alpha)
    low, high = (targets.min(axis=0), targets.max(axis=0)) if clamp else (None, None)
    return BoxRegressor(mean, scale, weights, bias, int(used.sum()), low, high)


__all__ = ["ALPHA", "MIN_IOU", "BoxRegressor", "fit_box_regressor", "ridge"]
