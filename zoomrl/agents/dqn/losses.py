"""DQN losses as plain functions. Targets are NumPy (they come from network outputs that take no gradient); the
losses are ``keras.ops`` expressions of the online network's Q-values, so every backend differentiates them.

A new loss is one more function here and one more term in :func:`dqn_loss`: nothing is packed into ``y_true``.
"""

from __future__ import annotations

import numpy as np
from keras import ops


def td_targets(
    returns: np.ndarray, discounts: np.ndarray, next_q_target: np.ndarray, next_q_online: np.ndarray | None = None
) -> np.ndarray:
    """``R + discount * Q_target(s', a*)``; ``a* = argmax Q_target(s')`` or, with ``next_q_online`` (Double DQN),
    ``argmax Q_online(s')``. ``returns`` are (n-step) discounted rewards; ``discounts`` are ``gamma**n``, or 0 where
    the episode terminated (the trigger), so terminal transitions do not bootstrap."""
    chooser = next_q_target if next_q_online is None else next_q_online
    best = next_q_target[np.arange(len(next_q_target)), np.argmax(chooser, axis=1)]
    return (returns + discounts * best).astype(np.float32)


def taken(q, actions):
    """``Q(s, a)`` of the taken actions: ``(B,)``."""
    mask = ops.one_hot(ops.cast(actions, "int32"), ops.shape(q)[-1], dtype=q.dtype)
    return ops.sum(q * mask, axis=-1)


def td_loss(q, actions, targets):
    """Squared error on the taken action only, per sample ``(B,)``. The untaken actions get no gradient (the 2016
    code regressed all six outputs towards values predicted without dropout, pulling them towards noise)."""
    return ops.square(taken(q, actions) - ops.cast(targets, q.dtype))


def large_margin_loss(q, actions, margin: float):
    """DQfD's supervised loss (Hester et al. 2018), per sample ``(B,)``:
    ``max_a [Q(s, a) + margin * (a != a_E)] - Q(s, a_E)``: zero once the demonstrated action ``a_E`` beats every
    other action by ``margin``."""
    mask = ops.one_hot(ops.cast(actions, "int32"), ops.shape(q)[-1], dtype=q.dtype)
    return ops.max(q + margin * (1.0 - mask), axis=-1) - ops.sum(q * mask, axis=-1)


def iou_loss(predicted_iou, ious):
    """Squared error of the IoU head, per sample ``(B,)``: ``predicted_iou`` ``(B, 1)`` against the IoU of each
    state's window with its target ``(B,)``."""
    return ops.square(ops.reshape(predicted_iou, (-1,)) - ops.cast(ious, predicted_iou.dtype))


def dqn_loss(q, batch, margin: float, margin_weight: float):
    """The learner's loss: mean TD error, plus ``margin_weight`` times the large-margin loss averaged over the
    demonstration samples of the batch (``batch["is_demo"]``; none: no margin term).

    ``batch`` is a dict of tensors: ``actions``, ``targets``, ``is_demo``."""
    loss = ops.mean(td_loss(q, batch["actions"], batch["targets"]))
    if margin_weight:
        demo = ops.cast(batch["is_demo"], q.dtype)
        per = large_margin_loss(q, batch["actions"], margin) * demo
        loss = loss + margin_weight * ops.sum(per) / ops.maximum(ops.sum(demo), 1.0)
    return loss
