"""The paper's rewards (section 3.3). Plain Python."""

from __future__ import annotations

MOVE_REWARD = 1.0
TRIGGER_REWARD = 3.0


def move_reward(iou_before: float, iou_after: float) -> float:
    """+1 when a move strictly increases the IoU with the target object, else -1 (equal IoU is -1)."""
    return MOVE_REWARD if iou_after > iou_before else -MOVE_REWARD


def trigger_reward(iou: float, threshold: float = 0.5, continuous: bool = False) -> float:
    """+3 when the trigger is taken on a window whose IoU with the target is at least ``threshold``, else -3 (the
    papers). ``continuous``: graded by the IoU, so a better window is worth more and a near miss costs less:
    ``3 + 3 (iou - t) / (1 - t)`` at or above the threshold ``t`` (3 at ``t``, 6 at IoU 1) and ``-3 + 2 iou / t``
    below it (-3 at IoU 0, approaching -1 at ``t``)."""
    if not continuous:
        return TRIGGER_REWARD if iou >= threshold else -TRIGGER_REWARD
    if iou >= threshold:
        return TRIGGER_REWARD * (1.0 + (iou - threshold) / max(1.0 - threshold, 1e-9))
    return -TRIGGER_REWARD + 2.0 * iou / threshold
