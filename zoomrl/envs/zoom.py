"""The search environment of one image (paper section 3). Plain NumPy: no Keras.

An :class:`ImageEpisode` runs the searches of one image. A search starts from the whole (masked) image; moves
0-4 replace the window by one of its five children (:func:`zoomrl.core.geometry.children`), action 5 (trigger) ends
it. After a trigger the found object is painted with the VGG mean pixel (the ground-truth box in training,
the triggered window in testing) and the next search starts from the whole image again.

Boxes are ``(x1, y1, x2, y2)`` in 0-based pixel-edge coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zoomrl.core.geometry import NUM_ACTIONS, TRIGGER, child, iou_matrix, pixel_window
from zoomrl.vision.features import Request
from zoomrl.envs.rewards import move_reward, trigger_reward

MASK_PIXEL = np.array([124, 117, 104], dtype=np.uint8)
"""The VGG mean (123.68, 116.779, 103.939) rounded to uint8 RGB: painted pixels become ~0 after preprocessing."""


def paint(image: np.ndarray, box) -> tuple[int, int, int, int]:
    """Paint ``box`` (pixel edges) of ``image`` (H, W, 3 uint8, in place) with the VGG mean pixel.

    Returns the integer pixel box painted (the mask key part).
    """
    h, w = image.shape[:2]
    x1, y1, x2, y2 = pixel_window(box, w, h)
    image[y1:y2, x1:x2] = MASK_PIXEL
    return (x1, y1, x2, y2)


def history_vector(actions: list[int], length: int) -> np.ndarray:
    """One-hot encoding of the last ``length`` actions, most recent first: ``(length * 6,)`` float32.

    Slot ``k`` (values ``6k .. 6k+5``) holds the ``k``-th most recent action; slots before the first action
    are all zero.
    """
    out = np.zeros(length * NUM_ACTIONS, dtype=np.float32)
    for k, a in enumerate(reversed(actions[-length:])):
        out[k * NUM_ACTIONS + int(a)] = 1.0
    return out


def choose_target(window, gt_boxes: np.ndarray, available: np.ndarray) -> tuple[int, float]:
    """Among the ``available`` ground-truth boxes, the one with the highest IoU with ``window``.

    Returns ``(index into gt_boxes, IoU)``, or ``(-1, 0.0)`` when none is available. Ties go to the lowest index.
    """
    if gt_boxes.shape[0] == 0 or not available.any():
        return -1, 0.0
    ious = iou_matrix(np.asarray(window, dtype=np.float64)[None], gt_boxes)[0]
    ious = np.where(available, ious, -1.0)
    idx = int(np.argmax(ious))
    return idx, float(ious[idx])


@dataclass
class SearchLog:
    """What one search did: windows visited, actions, Q-values (see docs/detections_format.md)."""

    windows: list[list[float]] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    q_values: list[list[float] | None] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    triggered: bool = False
    final_iou: float = 0.0

    def to_record(self) -> dict[str, Any]:
        box = self.windows[-1] if self.triggered else None
        score = None
        if self.triggered and self.q_values and self.q_values[-1] is not None:
            score = float(self.q_values[-1][TRIGGER])
        qs = None if all(q is None for q in self.q_values) else self.q_values
        return {
            "windows": self.windows,
            "actions": self.actions,
            "q_values": qs,
            "triggered": self.triggered,
            "box": box,
            "score": score,
            "steps": len(self.actions),
        }


class ImageEpisode:
    """All the searches of one image for one class.

    ``gt_boxes`` ``(N, 4)`` and ``difficult`` ``(N,)`` are the objects of the searched class. Difficult objects
    are never targets. ``training`` selects what is painted after a trigger (the target's ground truth when it
    was found, nothing on a wrong trigger) versus testing (the triggered window), and how many searches run:
    training one per non-difficult object, testing up to ``max_searches``, stopping at the first search that
    ends without a trigger.
    """

    def __init__(
        self,
        image_key: str,
        image: np.ndarray,
        gt_boxes: np.ndarray,
        difficult: np.ndarray,
        *,
        scale: float,
        max_steps: int,
        history_length: int = 4,
        trigger_iou: float = 0.5,
        training: bool = True,
        max_searches: int = 1,
        index: int = 0,
    ) -> None:
        self.image_key = image_key
        self.image = image.copy()  # painted in place as objects are found
        self.height, self.width = image.shape[:2]
        self.gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
        self.difficult = np.asarray(difficult, dtype=bool).reshape(-1)
        self.found = np.zeros(len(self.gt_boxes), dtype=bool)
        self.scale = float(scale)
        self.max_steps = int(max_steps)
        self.history_length = int(history_length)
        self.trigger_iou = float(trigger_iou)
        self.training = training
        n_targets = int((~self.difficult).sum())
        self.max_searches = max(1, n_targets) if training else int(max_searches)
        self.index = index
        self.mask_key: tuple[tuple[int, int, int, int], ...] = ()
        self.searches: list[SearchLog] = []
        self.finished = False
        self._start_search()

    # --- state --------------------------------------------------------------------------------------------
    def _start_search(self) -> None:
        self.window = (0.0, 0.0, float(self.width), float(self.height))
        self.history: list[int] = []
        self.log = SearchLog()
        self.searches.append(self.log)

    @property
    def available(self) -> np.ndarray:
        """Objects that can still be targets: not difficult and not found yet."""
        return ~self.difficult & ~self.found

    def target(self) -> tuple[int, float]:
        """The current target (highest IoU with the window among available objects) and that IoU."""
        return choose_target(self.window, self.gt_boxes, self.available)

    def request(self) -> Request:
        """What the feature model needs to describe the current window."""
        return Request(self.image_key, self.mask_key, self.image, self.window)

    def history_features(self) -> np.ndarray:
        return history_vector(self.history, self.history_length)

    @property
    def timed_out(self) -> bool:
        """The current search has used all its steps without a trigger."""
        return len(self.log.actions) >= self.max_steps

    # --- dynamics -----------------------------------------------------------------------------------------
    def step(self, action: int, q_values: np.ndarray | None = None) -> tuple[float, bool]:
        """Take ``action`` in the current window. Returns ``(reward, terminal)``; terminal means the trigger.

        The window is logged with its Q-values before it changes. The search is not advanced past its end here:
        call :meth:`end_search` after a trigger, or when :attr:`timed_out`.
        """
        if self.finished:
            raise RuntimeError(f"{self.image_key}: step() on a finished episode")
        action = int(action)
        if not 0 <= action < NUM_ACTIONS:
            raise ValueError(f"action must lie in 0..{NUM_ACTIONS - 1}, received {action}")
        target, iou_before = self.target()
        self.log.windows.append([float(v) for v in self.window])
        self.log.actions.append(action)
        self.log.q_values.append(None if q_values is None else [float(v) for v in q_values])
        self.history.append(action)
        if action == TRIGGER:
            reward = trigger_reward(iou_before, self.trigger_iou)
            self.log.rewards.append(reward)
            self.log.triggered = True
            self.log.final_iou = iou_before
            return reward, True
        self.window = tuple(float(v) for v in child(self.window, action, self.scale))
        iou_after = 0.0
        if target >= 0:
            iou_after = float(iou_matrix(np.asarray(self.window)[None], self.gt_boxes[target][None])[0, 0])
        reward = move_reward(iou_before, iou_after)
        self.log.rewards.append(reward)
        self.log.final_iou = self.target()[1]
        return reward, False

    def end_search(self) -> None:
        """Close the current search: paint what was found, then start the next search or finish the image."""
        triggered = self.log.triggered
        if triggered:
            if self.training:
                target, iou = self.target()
                if target >= 0 and iou >= self.trigger_iou:
                    self.found[target] = True
                    self._paint(self.gt_boxes[target])
            else:
                self._paint(self.window)
                # Mark the object the window found, so the oracle and the logs move on to the next one; the agent
                # never sees this (its state is the painted image and its own history).
                target, iou = self.target()
                if target >= 0 and iou >= self.trigger_iou:
                    self.found[target] = True
        more = len(self.searches) < self.max_searches
        if self.training:
            more = more and bool(self.available.any())
        else:
            more = more and triggered
        if more:
            self._start_search()
        else:
            self.finished = True

    def _paint(self, box) -> None:
        self.mask_key = self.mask_key + (paint(self.image, box),)

    # --- output -------------------------------------------------------------------------------------------
    def record(self, image_id: str) -> dict[str, Any]:
        """The per-image record of docs/detections_format.md."""
        searches = [s.to_record() for s in self.searches if s.actions]
        return {
            "image_id": image_id,
            "width": self.width,
            "height": self.height,
            "ground_truth": [
                {"box": [float(v) for v in b], "difficult": bool(d)} for b, d in zip(self.gt_boxes, self.difficult)
            ],
            "searches": searches,
            "windows_analysed": int(sum(s["steps"] for s in searches)),
        }
