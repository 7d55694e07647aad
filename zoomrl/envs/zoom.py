"""The hierarchical zoom environment (Bellver et al. 2016, section 3): a ``gymnasium.Env`` over one image.

* **Actions** (``Discrete(6)``): 0-4 replace the window by one of its five children
  (:func:`zoomrl.core.geometry.children`: top-left, top-right, bottom-left, bottom-right, centre), 5 is the trigger.
* **Observation**: the feature model's descriptor of the current window (times ``descriptor_scale``) followed by
  the last ``history_length`` actions one-hot (most recent first): a ``Box`` of ``descriptor_size + 6 * history``.
* **Reward**: +1/-1 as a move raises the IoU with the target or not; the trigger +3/-3 at IoU >= ``trigger_iou``.
* **Episodes**: one search is one episode. ``terminated`` is the trigger, ``truncated`` the step limit. After a
  search the found object is painted with the VGG mean (its ground truth when ``training``, else the triggered
  window) and the painting carries over to the next search, which starts from the whole image at the next
  :meth:`ZoomEnv.reset`. ``info["image_done"]`` says when the image has no search left (training: every object
  found or tried; testing: ``max_searches`` used, or a search ended without a trigger); the next reset then starts
  the image afresh.
* ``info`` holds the window, its IoU with the target, the target's index and the oracle's action (which the
  baselines and the demonstrations use; an agent must not).

:class:`ImageEpisode` is the plain NumPy state machine of one image's searches; :class:`ZoomEnv` wraps it with the
Gymnasium API; :mod:`zoomrl.envs.vector` runs many in lockstep with one batched feature call per step.

Boxes are ``(x1, y1, x2, y2)`` in 0-based pixel-edge coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from zoomrl.core.geometry import child, children, pixel_window
from zoomrl.envs import search
from zoomrl.envs.rewards import trigger_reward
from zoomrl.envs.search import Box, SearchEnv, SearchEpisode, SearchLog, choose_target, describe

__all__ = [
    "ImageEpisode",
    "ZoomEnv",
    "SearchLog",
    "choose_target",
    "describe",
    "history_vector",
    "paint",
    "mirror_boxes",
    "ACTION_NAMES",
    "NUM_ACTIONS",
    "TRIGGER",
    "MASK_PIXEL",
    "MIRRORED_ACTION",
]

TOP_LEFT, TOP_RIGHT, BOTTOM_LEFT, BOTTOM_RIGHT, CENTRE, TRIGGER = range(6)
ACTION_NAMES = ("top-left", "top-right", "bottom-left", "bottom-right", "centre", "trigger")
NUM_ACTIONS = len(ACTION_NAMES)

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


def history_vector(actions: Sequence[int], length: int, num_actions: int = NUM_ACTIONS) -> np.ndarray:
    """:func:`zoomrl.envs.search.history_vector` over this env's six actions by default."""
    return search.history_vector(actions, length, num_actions)


MIRRORED_ACTION = (TOP_RIGHT, TOP_LEFT, BOTTOM_RIGHT, BOTTOM_LEFT, CENTRE, TRIGGER)
"""The action that does in a horizontally flipped image what each action does in the original: left and right
corners swap; the centre and the trigger stay."""


def mirror_boxes(boxes, width: float) -> np.ndarray:
    """Boxes ``(..., 4)`` (pixel edges) of an image ``width`` wide, in the image flipped left to right:
    ``x1' = width - x2``, ``x2' = width - x1``."""
    b = np.asarray(boxes, dtype=np.float64)
    return np.stack([width - b[..., 2], b[..., 1], width - b[..., 0], b[..., 3]], axis=-1)


class ImageEpisode(SearchEpisode):
    """All the searches of one image for one class.

    ``gt_boxes`` ``(N, 4)`` and ``difficult`` ``(N,)`` are the objects of the searched class. Difficult objects
    are never targets. ``training`` selects what is painted after a trigger (the target's ground truth when it
    was found, nothing on a wrong trigger) versus testing (the triggered window), and how many searches run:
    training one per non-difficult object, testing up to ``max_searches``, stopping at the first search that
    ends without a trigger.

    Training can follow the test's rules instead (issue 17; each off by default, so training stays the paper's):
    ``paint_window`` paints the triggered window after every trigger, as testing does; ``search_until_miss`` runs
    up to ``max_searches`` searches and ends the image at the first search without a trigger, so searches go on
    after the last object (where any trigger is wrong, -3). ``nothing_left_reward`` is what a move earns when no
    object is left to find (paper: -1, as any move that does not raise the IoU; 0 makes searching on without a
    trigger worth more than a wrong trigger, so "nothing left" is learnable). ``teach_iou`` is the IoU at which the
    oracle (and so the forced trigger, :meth:`teach_trigger`) triggers (None: ``trigger_iou``); below it the oracle
    zooms on while a child raises the IoU, and triggers at the local maximum. ``continuous_trigger`` grades the
    trigger's reward by the IoU (:func:`~zoomrl.envs.rewards.trigger_reward`).
    """

    action_names = ACTION_NAMES
    trigger = TRIGGER
    num_actions = NUM_ACTIONS

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
        paint_window: bool | None = None,
        search_until_miss: bool | None = None,
        nothing_left_reward: float = -1.0,
        teach_iou: float | None = None,
        continuous_trigger: bool = False,
    ) -> None:
        self._setup(image_key, image, gt_boxes, difficult, training, max_steps, history_length, trigger_iou, index)
        self.scale = float(scale)
        self.paint_window = (not training) if paint_window is None else bool(paint_window)
        self.search_until_miss = (not training) if search_until_miss is None else bool(search_until_miss)
        self.nothing_left_reward = float(nothing_left_reward)
        self.teach_iou = self.trigger_iou if teach_iou is None else float(teach_iou)
        self.continuous_trigger = bool(continuous_trigger)
        n_targets = int((~self.difficult).sum())
        self.max_searches = int(max_searches) if self.search_until_miss else max(1, n_targets)
        self._start_search()

    # --- dynamics -----------------------------------------------------------------------------------------
    def _start_search(self) -> None:
        self._open_log((0.0, 0.0, float(self.width), float(self.height)))

    def moved(self, action: int) -> Box:
        x1, y1, x2, y2 = (float(v) for v in child(self.window, action, self.scale))
        return (x1, y1, x2, y2)

    def trigger_reward(self, iou: float) -> float:
        return trigger_reward(iou, self.trigger_iou, self.continuous_trigger)

    def end_search(self) -> None:
        """Close the current search: paint what was found, then start the next search or finish the image."""
        triggered = self.log.triggered
        if triggered:
            if not self.paint_window:
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
        if not self.search_until_miss:
            more = more and bool(self.available.any())
        else:
            more = more and triggered
        if more:
            self._start_search()
        else:
            self.finished = True

    def _paint(self, box: Sequence[float]) -> None:
        self.mask_key = self.mask_key + (paint(self.image, box),)

    # --- privileged information: baselines and demonstrations only -----------------------------------------
    def candidate_moves(self) -> tuple[list[int], np.ndarray]:
        """The five children (the oracle triggers when none raises the IoU: an upper bound of the hierarchy)."""
        return list(range(CENTRE + 1)), children(self.window, self.scale)

    def teach_trigger(self) -> bool:
        """Whether training forces the trigger here (paper 3.4): the oracle would trigger and the trigger is right
        (IoU >= ``trigger_iou``). With the default ``teach_iou`` this is the paper's "IoU >= 0.5"; with a higher
        one, the first window at ``teach_iou``, or a local maximum (no child raises the IoU) of an IoU that
        passes the test."""
        target, iou = self.target()
        return target >= 0 and iou >= self.trigger_iou and self.oracle_action() == TRIGGER


class ZoomEnv(SearchEnv):
    """One image's searches as a Gymnasium environment (see the module docstring).

    ``features`` is a :class:`~zoomrl.vision.features.FeatureModel` (anything with ``describe(requests)`` and
    ``descriptor_size``); ``None`` gives observations made of the action history alone. ``training`` selects the
    training behaviour (paint the ground truth of a found object; one search per object) or the testing one (paint
    the triggered window; up to ``max_searches``). Registered as ``zoomrl/Zoom-v0``."""

    def __init__(
        self,
        image: np.ndarray,
        gt_boxes: np.ndarray,
        difficult: np.ndarray | None = None,
        *,
        features: Any = None,
        image_key: str = "image",
        scale: float = 0.75,
        max_steps: int = 10,
        history_length: int = 4,
        trigger_iou: float = 0.5,
        training: bool = True,
        max_searches: int = 3,
        descriptor_scale: float = 1.0,
        index: int = 0,
        **rules: Any,
    ) -> None:
        """``rules``: :class:`ImageEpisode`'s ``paint_window``, ``search_until_miss``, ``nothing_left_reward``,
        ``teach_iou`` and ``continuous_trigger`` (training that follows the test's rules; see there)."""
        super().__init__()
        self._setup(
            image,
            gt_boxes,
            difficult,
            features=features,
            image_key=image_key,
            descriptor_scale=descriptor_scale,
            index=index,
            num_actions=NUM_ACTIONS,
            state_tail=NUM_ACTIONS * history_length,
        )
        self._kwargs = dict(
            scale=scale,
            max_steps=max_steps,
            history_length=history_length,
            trigger_iou=trigger_iou,
            training=training,
            max_searches=max_searches,
            index=index,
            **rules,
        )
        self.episode: ImageEpisode | None = None

    def _new_episode(self) -> ImageEpisode:
        return ImageEpisode(self.image_key, self._image, self._gt, self._difficult, **self._kwargs)

    def _hints(self, e: ImageEpisode) -> dict[str, Any]:
        return {"teach_trigger": e.teach_trigger()}

    def _done_hints(self) -> dict[str, Any]:
        return {"teach_trigger": False}
