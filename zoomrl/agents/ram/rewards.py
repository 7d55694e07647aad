"""Rewards of the location policy, in ``keras.ops`` (they run inside the loss; NumPy inputs work too).

* classification: 1 when the predicted class (arg-max of the logits) is the true one, else 0 (Mnih et al.);
* regression: of the normalised distance ``d`` (pixel distance / the object's box height):
  ``gaussian``: ``exp(-d**2 / sigma**2)`` (the variant's bell-shaped reward), or
  ``binary``: 1 when ``d < radius``, else 0.
"""

from __future__ import annotations

from keras import ops

REWARDS = ("gaussian", "binary")


def classification_reward(logits, labels):
    """``(B, n_classes)`` logits, ``(B,)`` integer labels -> ``(B,)`` float32 0/1."""
    pred = ops.argmax(logits, axis=-1)
    return ops.cast(ops.equal(ops.cast(pred, "int32"), ops.cast(labels, "int32")), "float32")


def gaussian_reward(distance, sigma: float):
    """``exp(-d**2 / sigma**2)``."""
    d = ops.cast(distance, "float32")
    return ops.exp(-ops.square(d) / float(sigma) ** 2)


def binary_reward(distance, radius: float):
    """1 where ``d < radius``, else 0."""
    return ops.cast(ops.less(ops.cast(distance, "float32"), float(radius)), "float32")


def normalised_distance(pred, target, scale):
    """``|| pred - target ||_2 * scale``: locations in [-1, 1] units, ``scale`` = (image side / 2) / box height."""
    diff = ops.cast(pred, "float32") - ops.cast(target, "float32")
    return ops.sqrt(ops.sum(ops.square(diff), axis=-1) + 1e-12) * ops.cast(scale, "float32")


def regression_reward(distance, kind: str, sigma: float, radius: float):
    if kind == "gaussian":
        return gaussian_reward(distance, sigma)
    if kind == "binary":
        return binary_reward(distance, radius)
    raise ValueError(f"reward must be one of {', '.join(REWARDS)}; received {kind!r}")
