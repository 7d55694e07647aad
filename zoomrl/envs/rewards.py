"""The paper's rewards (section 3.3). Plain Python."""

from __future__ import annotations

MOVE_REWARD = 1.0
TRIGGER_REWARD = 3.0


def move_reward(iou_before: float, iou_after: float) -> float:
    """+1 when a move strictly increases the IoU with the target object, else -1 (equal IoU is -1)."""
    return MOVE_REWARD if iou_after > iou_before else -MOVE_REWARD


def trigger_reward(iou: float, threshold: float = 0.5) -> float:
    """+3 when the trigger is taken on a window whose IoU with the target is at least ``threshold``, else -3."""
    return TRIGGER_REWARD if iou >= threshold else -TRIGGER_REWARD
