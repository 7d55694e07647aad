"""The active localisation environment (Caicedo and Lazebnik, ICCV 2015): a box that moves, scales and triggers.

* **Actions** (``Discrete(9)``, or 10 with ``fine_smaller``): 0 right, 1 left, 2 up, 3 down (move by ``alpha``
  times the box's width or height), 4 bigger, 5 smaller (scale width and height by ``1 + alpha`` / ``1 - alpha``
  about the centre), 6 fatter (height times ``1 - alpha``), 7 taller (width times ``1 - alpha``), 8 trigger and,
  as a tenth action, 9 a finer smaller (width and height times ``1 - fine_alpha``). See :func:`transform` for how
  the box stays inside the image.
* **Observation**: the feature model's descriptor of the box taken with context (:func:`context_window`: the
  R-CNN padding, 16 px at the 224 px warped size) followed by the last ``history_length`` actions one-hot (most
  recent first): ``descriptor_size + num_actions * history_length`` values (25088 + 90 with VGG-16 ``block5_pool``).
  Options append the box's geometry (``state_geometry``: ``x1 / W, y1 / H, w / W, h / H``, so revisited boxes
  and places in the image are told apart) and the search's step count (``state_steps``: actions taken in this
  search over ``max_steps``, so the agent knows how much of its budget is left); :func:`extra_state_size`.
* **Reward**: a move earns +1 when it strictly raises the IoU with the target object (the available object of
  highest IoU with the box before the move), else -1; the trigger +3 at IoU >= ``trigger_iou`` (0.6 in training,
  0.5 in evaluation), else -3. With ``continuous_trigger`` (:func:`trigger_reward`) the trigger earns 3 to 6,
  rising linearly from ``trigger_iou`` to IoU 1, and -3 to -1 below it.
* **Inhibition of return**: after a trigger a black cross (:func:`paint_cross`) is painted centred on the box,
  and the next search starts.
* **Searches**: training runs one search per non-difficult object, each from the whole image, of at most
  ``max_steps`` actions. Testing runs searches until the image has used ``max_total_steps`` actions (200): the
  first from the whole image, each later one, after a trigger or ``max_steps`` (40; ``restart_steps`` if set)
  actions without one, from a box of ``restart_scale`` (75%) of the image at the four corners in turn
  (:func:`restart_box`).
* ``stop_when_found`` (the oracle baseline only, which knows the ground truth) ends a test image once every object
  is found.
* ``info`` holds the box, its IoU with the target, the oracle's action and ``positive_actions`` (the actions whose
  reward would be positive: guided exploration draws among them). Only exploration, demonstrations and baselines
  may read them. ``revisit_actions`` (not privileged: the agent knows its own path) are the moves that would lead
  to a box already visited in this search (with ``revisit_scope="image"``, or analysed in an earlier search of
  the image), a move against the border (which leaves the box) included; the test policy with ``avoid_revisits``
  never takes them (see
  :func:`zoomrl.envs.active_runs.revisit_free_greedy_policy`).

:class:`ActiveEpisode` is the plain NumPy state machine of one image; :class:`ActiveEnv` wraps it as a
``gymnasium.Env`` implementing :class:`zoomrl.envs.vector.LockstepEnv`, so
:class:`~zoomrl.envs.vector.ZoomVectorEnv` runs many images in lockstep with one feature call per step.

Boxes are ``(x1, y1, x2, y2)`` in 0-based pixel-edge coordinates (see :mod:`zoomrl.core.geometry`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from zoomrl.core.geometry import iou_matrix, pixel_window
from zoomrl.envs.rewards import move_reward, trigger_reward
from zoomrl.envs.search import Box, SearchEnv, SearchEpisode, SearchLog, box_key, history_vector

RIGHT, LEFT, UP, DOWN, BIGGER, SMALLER, FATTER, TALLER, TRIGGER, FINE_SMALLER = range(10)
ACTION_NAMES = ("right", "left", "up", "down", "bigger", "smaller", "fatter", "taller", "trigger", "finer smaller")
ALPHA = 0.2
FINE_ALPHA = 0.05
MIN_SIDE = 8.0
"""A scaling never makes a side shorter than this many pixels (nor shortens a side that already is)."""
CONTEXT_PX = 16
INPUT_SIZE = 224
RESTART_SCALE = 0.75
CROSS_WIDTH = 0.2
"""Each arm of the inhibition-of-return cross is this fraction of the box's side thick."""
CROSS_PIXEL = np.array([0, 0, 0], dtype=np.uint8)
REVISIT_SCOPES = ("search", "image")
"""Where ``revisit_actions`` looks for visited boxes: the current search's, or every search's of the image."""


def num_actions(fine_smaller: bool) -> int:
    """9 actions (the paper), or 10 with the finer smaller."""
    return 10 if fine_smaller else 9


def extra_state_size(state_geometry: bool = False, state_steps: bool = False) -> int:
    """Values the state holds after the action history: 4 for the box's geometry, 1 for the step count."""
    return 4 * bool(state_geometry) + bool(state_steps)


def transform(
    box: Sequence[float],
    action: int,
    width: float,
    height: float,
    alpha: float = ALPHA,
    fine_alpha: float = FINE_ALPHA,
    min_side: float = MIN_SIDE,
) -> tuple[float, float, float, float]:
    """The box after move ``action`` (0-7 or 9; the trigger leaves it), inside the image ``[0, W] x [0, H]``.

    Moves shift by ``alpha`` times the box's width (right, left) or height (up, down), stopping at the image
    border with the size kept. Scalings keep the centre: bigger makes width and height ``(1 + alpha)`` times,
    then clips to the image; smaller ``(1 - alpha)``; fatter the height ``(1 - alpha)``; taller the width
    ``(1 - alpha)``; the finer smaller both ``(1 - fine_alpha)``. A scaling never takes a side below ``min_side``
    pixels (a side already shorter is left as it is)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    action = int(action)

    def shrink(lo: float, hi: float, factor: float) -> tuple[float, float]:
        side = hi - lo
        new = max(side * factor, min(side, min_side))
        centre = (lo + hi) / 2.0
        return centre - new / 2.0, centre + new / 2.0

    if action == RIGHT:
        d = min(alpha * w, width - x2)
        x1, x2 = x1 + d, x2 + d
    elif action == LEFT:
        d = min(alpha * w, x1)
        x1, x2 = x1 - d, x2 - d
    elif action == UP:
        d = min(alpha * h, y1)
        y1, y2 = y1 - d, y2 - d
    elif action == DOWN:
        d = min(alpha * h, height - y2)
        y1, y2 = y1 + d, y2 + d
    elif action == BIGGER:
        x1, x2 = max(0.0, x1 - alpha * w / 2.0), min(float(width), x2 + alpha * w / 2.0)
        y1, y2 = max(0.0, y1 - alpha * h / 2.0), min(float(height), y2 + alpha * h / 2.0)
    elif action == SMALLER:
        x1, x2 = shrink(x1, x2, 1.0 - alpha)
        y1, y2 = shrink(y1, y2, 1.0 - alpha)
    elif action == FATTER:
        y1, y2 = shrink(y1, y2, 1.0 - alpha)
    elif action == TALLER:
        x1, x2 = shrink(x1, x2, 1.0 - alpha)
    elif action == FINE_SMALLER:
        x1, x2 = shrink(x1, x2, 1.0 - fine_alpha)
        y1, y2 = shrink(y1, y2, 1.0 - fine_alpha)
    elif action != TRIGGER:
        raise ValueError(f"action must lie in 0..9, received {action}")
    return (x1, y1, x2, y2)


def context_window(
    box: Sequence[float], width: int, height: int, context: int = CONTEXT_PX, size: int = INPUT_SIZE
) -> tuple[float, float, float, float]:
    """The box padded as R-CNN does, so that once warped to ``size`` x ``size`` it has ``context`` pixels of
    image around it on each side: each side grows by ``context / (size - 2 * context)`` of the box's side (1/12
    for 16 of 224), then the window is clipped to the image (no padding with the mean beyond the border)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    f = context / float(size - 2 * context)
    px, py = f * (x2 - x1), f * (y2 - y1)
    return (max(0.0, x1 - px), max(0.0, y1 - py), min(float(width), x2 + px), min(float(height), y2 + py))


def restart_box(k: int, width: float, height: float, scale: float = RESTART_SCALE) -> tuple[float, float, float, float]:
    """Start box of test search ``k`` (0-based): the whole image for ``k = 0``, then a box of ``scale`` of the
    image's width and height at the top-left, top-right, bottom-left and bottom-right corners in turn."""
    if k == 0:
        return (0.0, 0.0, float(width), float(height))
    w, h = scale * width, scale * height
    corner = (k - 1) % 4
    x1 = 0.0 if corner in (0, 2) else float(width) - w
    y1 = 0.0 if corner in (0, 1) else float(height) - h
    return (x1, y1, x1 + w, y1 + h)


def cross_boxes(
    box: Sequence[float], width: int, height: int, arm: float = CROSS_WIDTH
) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """The two pixel rectangles of the inhibition-of-return cross of ``box``: the horizontal arm spans the box's
    width and is ``arm`` times its height thick, the vertical arm spans its height and is ``arm`` times its width
    thick, both centred on the box's centre (at least one pixel thick)."""
    x1, y1, x2, y2 = pixel_window(box, width, height)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    th = max(1, int(round(arm * (y2 - y1))))
    tw = max(1, int(round(arm * (x2 - x1))))
    hy1 = int(round(cy - th / 2.0))
    vx1 = int(round(cx - tw / 2.0))
    horizontal = (x1, max(y1, hy1), x2, min(y2, hy1 + th))
    vertical = (max(x1, vx1), y1, min(x2, vx1 + tw), y2)
    return horizontal, vertical


def paint_cross(image: np.ndarray, box: Sequence[float], arm: float = CROSS_WIDTH) -> tuple[Any, ...]:
    """Paint the black cross of :func:`cross_boxes` on ``image`` (H, W, 3 uint8, in place); returns the mask key
    part ``("cross", horizontal, vertical)``."""
    h, w = image.shape[:2]
    horizontal, vertical = cross_boxes(box, w, h, arm)
    for x1, y1, x2, y2 in (horizontal, vertical):
        image[y1:y2, x1:x2] = CROSS_PIXEL
    return ("cross", horizontal, vertical)


class ActiveEpisode(SearchEpisode):
    """All the searches of one image for one class (see the module docstring). ``gt_boxes`` ``(N, 4)`` and
    ``difficult`` ``(N,)`` are the class's objects; difficult ones are never targets."""

    action_names = ACTION_NAMES
    trigger = TRIGGER

    def __init__(
        self,
        image_key: str,
        image: np.ndarray,
        gt_boxes: np.ndarray,
        difficult: np.ndarray,
        *,
        training: bool = True,
        max_steps: int = 40,
        max_total_steps: int = 200,
        history_length: int = 10,
        trigger_iou: float = 0.6,
        fine_smaller: bool = False,
        continuous_trigger: bool = False,
        alpha: float = ALPHA,
        fine_alpha: float = FINE_ALPHA,
        restart_scale: float = RESTART_SCALE,
        cross_width: float = CROSS_WIDTH,
        context: int = CONTEXT_PX,
        stop_when_found: bool = False,
        state_geometry: bool = False,
        state_steps: bool = False,
        revisit_iou: float = 1.0,
        revisit_scope: str = "search",
        restart_steps: int = 0,
        index: int = 0,
    ) -> None:
        self._setup(image_key, image, gt_boxes, difficult, training, max_steps, history_length, trigger_iou, index)
        # Testing: a search without a trigger restarts after this many actions (0: max_steps); the state's step
        # count stays over max_steps, the scale the network was trained with.
        self.restart_steps = int(restart_steps) if restart_steps > 0 and not training else self.max_steps
        self.max_total_steps = int(max_total_steps)
        self.num_actions = num_actions(fine_smaller)
        self.continuous_trigger = continuous_trigger
        self.alpha, self.fine_alpha = float(alpha), float(fine_alpha)
        self.restart_scale = float(restart_scale)
        self.cross_width = float(cross_width)
        self.context = int(context)
        self.stop_when_found = stop_when_found
        self.state_geometry = bool(state_geometry)
        self.state_steps = bool(state_steps)
        self.revisit_iou = float(revisit_iou)
        if revisit_scope not in REVISIT_SCOPES:
            raise ValueError(f"revisit_scope must be one of {', '.join(REVISIT_SCOPES)}; received {revisit_scope!r}")
        self.revisit_scope = revisit_scope
        self.max_searches = max(1, int((~self.difficult).sum()))
        self.starts: list[Box] = []
        self._start_search()

    def _start_search(self) -> None:
        k = 0 if self.training else len(self.searches)
        start = restart_box(k, self.width, self.height, self.restart_scale)
        self.starts.append(start)
        self._open_log(start)

    def view(self) -> Box:
        """The box with its context (the feature model sees it on the image with its crosses)."""
        return context_window(self.window, self.width, self.height, self.context)

    def history_features(self) -> np.ndarray:
        """Everything in the state after the descriptor: the past actions one-hot, then the options' geometry
        ``(x1 / W, y1 / H, w / W, h / H)`` and step count (actions of this search over ``max_steps``)."""
        history = history_vector(self.history, self.history_length, self.num_actions)
        if not (self.state_geometry or self.state_steps):
            return history
        extra = []
        if self.state_geometry:
            x1, y1, x2, y2 = self.window
            extra += [x1 / self.width, y1 / self.height, (x2 - x1) / self.width, (y2 - y1) / self.height]
        if self.state_steps:
            extra.append(len(self.log.actions) / self.max_steps)
        return np.concatenate([history, np.asarray(extra, dtype=np.float32)])

    @property
    def timed_out(self) -> bool:
        """The current search has used its steps (testing: ``restart_steps``, or the image its 200)."""
        if len(self.log.actions) >= self.restart_steps:
            return True
        return not self.training and self.total_steps >= self.max_total_steps

    def moved(self, action: int) -> Box:
        return transform(self.window, action, self.width, self.height, self.alpha, self.fine_alpha)

    def trigger_reward(self, iou: float) -> float:
        return trigger_reward(iou, self.trigger_iou, self.continuous_trigger)

    def end_search(self) -> None:
        """Close the search: after a trigger paint the cross on the box (and count the target found when the
        IoU reached the threshold); then start the next search or finish the image."""
        if self.log.triggered:
            target, iou = self.target()
            if target >= 0 and iou >= self.trigger_iou:
                self.found[target] = True
            self.mask_key = self.mask_key + (paint_cross(self.image, self.window, self.cross_width),)
        if self.training:
            more = len(self.searches) < self.max_searches and bool(self.available.any())
        else:
            more = self.total_steps < self.max_total_steps
            if self.stop_when_found:
                more = more and bool(self.available.any())
        if more:
            self._start_search()
        else:
            self.finished = True

    def _search_record(self, k: int, log: SearchLog) -> dict[str, Any]:
        """The search's record plus its start box."""
        return {**log.to_record(), "start": [float(v) for v in self.starts[k]]}

    def revisit_actions(self) -> tuple[int, ...]:
        """The moves that would lead to a box already visited in this search (the current box included: a move
        against the border, which changes nothing), or with ``revisit_iou`` < 1 to a box overlapping one of them at
        IoU >= ``revisit_iou``. The trigger is never among them.

        With ``revisit_scope`` ``"image"`` the boxes analysed in the image's earlier searches count too, so that
        a later search goes where the agent has not looked; when that would leave no move (a search restarted on
        a corner box already explored), the search's own boxes alone count."""
        moves = [a for a in range(self.num_actions) if a != TRIGGER]
        boxes = [self.moved(a) for a in moves]
        revisit = self._revisits(boxes, self.visited, [*self.log.windows, self.window])
        if self.revisit_scope == "image" and len(self.searches) > 1:
            earlier = [w for log in self.searches[:-1] for w in log.windows]
            keys = self.visited | {box_key(w) for w in earlier}
            wider = self._revisits(boxes, keys, [*earlier, *self.log.windows, self.window])
            if not all(wider):
                revisit = wider
        return tuple(a for a, r in zip(moves, revisit) if r)

    def _revisits(self, boxes: list[Box], keys: set[Any], seen: list[Box]) -> list[bool]:
        """Whether each box is one of ``keys`` or, with ``revisit_iou`` < 1, overlaps a box of ``seen`` at IoU >=
        ``revisit_iou``."""
        revisit = [box_key(b) in keys for b in boxes]
        if self.revisit_iou < 1.0:
            seen_array = np.asarray(seen, dtype=np.float64)
            near = iou_matrix(np.asarray(boxes, dtype=np.float64), seen_array).max(axis=1) >= self.revisit_iou
            revisit = [r or bool(n) for r, n in zip(revisit, near)]
        return revisit

    # --- privileged information: exploration, demonstrations and baselines only ---------------------------
    def positive_actions(self) -> tuple[int, ...]:
        """The actions whose reward would be positive now: the moves that raise the IoU with the target, and
        the trigger at IoU >= the threshold (guided exploration draws among these)."""
        target, current = self.target()
        out = []
        if target >= 0:
            gt = self.gt_boxes[target][None]
            for a in range(self.num_actions):
                if a == TRIGGER:
                    if current >= self.trigger_iou:
                        out.append(a)
                elif iou_matrix(np.asarray(self.moved(a))[None], gt)[0, 0] > current:
                    out.append(a)
        return tuple(out)


class ActiveEnv(SearchEnv):
    """One image's searches as a Gymnasium environment (see the module docstring); ``features`` describes the
    context windows (``None``: observations are the state after the descriptor alone). Keyword arguments are those
    of :class:`ActiveEpisode`. Registered as ``zoomrl/Active-v0``."""

    def __init__(
        self,
        image: np.ndarray,
        gt_boxes: np.ndarray,
        difficult: np.ndarray | None = None,
        *,
        features: Any = None,
        image_key: str = "image",
        descriptor_scale: float = 1.0,
        index: int = 0,
        **episode: Any,
    ) -> None:
        super().__init__()
        n = num_actions(bool(episode.get("fine_smaller", False)))
        history = int(episode.get("history_length", 10))
        extra = extra_state_size(bool(episode.get("state_geometry")), bool(episode.get("state_steps")))
        self._setup(
            image,
            gt_boxes,
            difficult,
            features=features,
            image_key=image_key,
            descriptor_scale=descriptor_scale,
            index=index,
            num_actions=n,
            state_tail=n * history + extra,
        )
        self._kwargs = dict(episode, index=index)
        self.episode: ActiveEpisode | None = None

    def _new_episode(self) -> ActiveEpisode:
        return ActiveEpisode(self.image_key, self._image, self._gt, self._difficult, **self._kwargs)

    def _hints(self, e: ActiveEpisode) -> dict[str, Any]:
        return {"positive_actions": e.positive_actions(), "revisit_actions": e.revisit_actions()}

    def _done_hints(self) -> dict[str, Any]:
        return {"positive_actions": (), "revisit_actions": ()}


__all__ = [
    "ActiveEnv",
    "ActiveEpisode",
    "ACTION_NAMES",
    "TRIGGER",
    "FINE_SMALLER",
    "transform",
    "context_window",
    "restart_box",
    "cross_boxes",
    "paint_cross",
    "trigger_reward",
    "move_reward",
    "num_actions",
    "extra_state_size",
    "box_key",
    "REVISIT_SCOPES",
]
