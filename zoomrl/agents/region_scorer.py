"""A region classifier: R-CNN's per-class linear detector over region descriptors, to score boxes an agent attended.

The active agent's own trigger Q-value ranks the regions it attended badly (docs/active.md); R-CNN ranked its
proposals with a per-class classifier of their descriptors. This is that classifier: an L2-regularised logistic
regression over the standardised descriptor of a box, trained on boxes sampled on the training images
(:func:`zoomrl.core.geometry.sample_boxes`), positive at IoU >= ``positive_iou`` with an object of the class and
negative below ``negative_iou`` (0.5 by default, so that near misses count against a box; R-CNN's SVMs took 0.3 and
left the boxes in between out). Its score is the logit, which ranks the same as the probability and does not
saturate.

It sees arrays only (descriptors, IoUs); where the boxes and their descriptors come from is the family's business
(``zoomrl/experiments/active/scorer.py``). Saved as a ``.npz`` of plain arrays, written atomically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

POSITIVE_IOU = 0.5
NEGATIVE_IOU = 0.5
C = 1e-5
"""Inverse L2 strength of the logistic regression over standardised descriptors. ``NEGATIVE_IOU`` and ``C`` were
chosen on validation images (docs/active.md, "The region classifier"): the raccoon validation split of the active
``fast_roi`` seed 0 (24 trainval images), its best agent's boxes scored by classifiers of negatives below 0.3 or
0.5 and C of 1e-5, 1e-4 or 1e-3: all attended regions' AP 0.564 for (0.5, 1e-5), 0.49 to 0.51 with 0.3."""


@dataclass
class RegionScorer:
    """``score(x) = ((x - mean) / scale) . weights + bias`` for descriptors ``x`` ``(N, D)``."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    n_positives: int = 0
    n_negatives: int = 0

    @property
    def descriptor_size(self) -> int:
        return int(self.weights.shape[0])

    def score(self, descriptors: np.ndarray) -> np.ndarray:
        """The logit of each descriptor ``(N, D)``: ``(N,)`` float64."""
        x = np.asarray(descriptors, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.descriptor_size:
            raise ValueError(
                f"region scorer: expected descriptors (N, {self.descriptor_size}), received shape {x.shape}"
            )
        return ((x - self.mean) / self.scale) @ self.weights + self.bias

    def save(self, path: str | os.PathLike) -> None:
        from zoomrl.core.io import atomic_path

        arrays = {
            "mean": self.mean,
            "scale": self.scale,
            "weights": self.weights,
            "bias": np.array(self.bias),
            "counts": np.array([self.n_positives, self.n_negatives]),
        }
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> RegionScorer:
        """A saved scorer; a missing or damaged file is one line naming it
        (:func:`zoomrl.core.checkpoint.read_state`)."""
        from zoomrl.core.checkpoint import read_state
        from zoomrl.core.io import FileDamagedError

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such region scorer (train with --region-scorer)")
        arrays = read_state(path)
        try:
            n_pos, n_neg = (int(v) for v in arrays["counts"])
            return cls(arrays["mean"], arrays["scale"], arrays["weights"], float(arrays["bias"]), n_pos, n_neg)
        except (KeyError, IndexError, TypeError, ValueError):
            raise FileDamagedError(
                f"{path}: not a region scorer (expected the arrays mean, scale, weights, bias, counts)"
            ) from None


def labels_from_iou(
    ious: np.ndarray, positive_iou: float = POSITIVE_IOU, negative_iou: float = NEGATIVE_IOU
) -> tuple[np.ndarray, np.ndarray]:
    """``(used, positive)`` boolean masks: a box is positive at IoU >= ``positive_iou``, negative below
    ``negative_iou``, unused in between."""
    ious = np.asarray(ious, dtype=np.float64)
    positive = ious >= positive_iou
    return positive | (ious < negative_iou), positive


def fit_region_scorer(
    descriptors: np.ndarray,
    ious: np.ndarray,
    c: float = C,
    positive_iou: float = POSITIVE_IOU,
    negative_iou: float = NEGATIVE_IOU,
    seed: int = 0,
) -> RegionScorer:
    """The logistic regression (scikit-learn, L-BFGS) of :func:`labels_from_iou`'s labels on the standardised
    ``descriptors`` ``(N, D)`` of boxes whose best IoU with an object of the class is ``ious`` ``(N,)``. Needs at
    least one positive and one negative box (ValueError otherwise)."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(descriptors, dtype=np.float64)
    used, positive = labels_from_iou(ious, positive_iou, negative_iou)
    n_pos, n_neg = int((used & positive).sum()), int((used & ~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"region scorer: needs positive (IoU >= {positive_iou}) and negative (IoU < {negative_iou}) boxes; "
            f"got {n_pos} and {n_neg}"
        )
    x = x[used]
    mean = x.mean(axis=0)
    # A constant feature (e.g. a channel that never fires) keeps scale 1: it then adds nothing, and no NaN.
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-6, scale, 1.0)
    model = LogisticRegression(C=c, max_iter=500, random_state=seed)
    model.fit((x - mean) / scale, positive[used])
    return RegionScorer(mean, scale, model.coef_[0].astype(np.float64), float(model.intercept_[0]), n_pos, n_neg)


__all__ = ["C", "NEGATIVE_IOU", "POSITIVE_IOU", "RegionScorer", "fit_region_scorer", "labels_from_iou"]
