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
  first from the whole image, each later one, after a trigger or ``max_steps`` (40) actions without one, from a
  box of ``restart_scale`` (75%) of the image at the four corners in turn (:func:`restart_box`).
* ``stop_when_found`` (the oracle baseline only, which knows the ground truth) ends a test image once every object
  is found.
* ``info`` holds the box, its IoU with the target, the oracle's action and ``positive_actions`` (the actions whose
  reward would be positive: guided exploration draws among them). Only exploration, demonstrations and baselines
  may read them. ``revisit_actions`` (not privileged: the agent knows its own path) are the moves that would lead
  to a box already visited in this search, a move against the border (which leaves the box) included; the test
  policy with ``avoid_revisits`` never takes them (see
  :func:`zoomrl.experiments.active.test.revisit_free_greedy_policy`).

:class:`ActiveEpisode` is the plain NumPy state machine of one image; :class:`ActiveEnv` wraps it as a
``gymnasium.Env`` implementing :class:`zoomrl.envs.vector.LockstepEnv`, so
:class:`~zoomrl.envs.vector.ZoomVectorEnv` runs many images in lockstep with one feature call per step.

Boxes are ``(x1, y1, x2, y2)`` in 0-based pixel-edge coordinates (see :mod:`zoomrl.core.geometry`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from zoomrl.core.geometry import iou_matrix, pixel_window
from zoomrl.envs.zoom import SearchLog, choose_target, describe, history_vector
from zoomrl.vision.features import Request

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
TRIGGER_REWARD = 3.0


def num_actions(fine_smaller: bool) -> int:
    """9 actions (the paper), or 10 with the finer smaller."""
    return 10 if fine_smaller else 9


def extra_state_size(state_geometry: bool = False, state_steps: bool = False) -> int:
    """Values the state holds after the action history: 4 for the box's geometry, 1 for the step count."""
    return 4 * bool(state_geometry) + bool(state_steps)


def box_key(box: Sequence[float]) -> tuple[float, ...]:
    """A hashable identity of a box, to a thousandth of a pixel (a move and its opposite may leave a box that
    differs from the first by float rounding only)."""
    return tuple(round(float(v), 3) for v in box)


def transform(box: Sequence[float], action: int, width: float, height: float, alpha: float = ALPHA,
              fine_alpha: float = FINE_ALPHA, min_side: float = MIN_SIDE) -> tuple[float, float, float, float]:
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


def context_window(box: Sequence[float], width: int, height: int, context: int = CONTEXT_PX,
                   size: int = INPUT_SIZE) -> tuple[float, float, float, float]:
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


def cross_boxes(box: Sequence[float], width: int, height: int, arm: float = CROSS_WIDTH
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


def move_reward(iou_before: float, iou_after: float) -> float:
    """+1 when a move strictly raises the IoU with the target, else -1 (an unchanged IoU is -1)."""
    return 1.0 if iou_after > iou_before else -1.0


def trigger_reward(iou: float, threshold: float, continuous: bool = False) -> float:
    """The trigger's reward: +3 at ``iou >= threshold``, else -3 (the paper). ``continuous``: monotone in the
    IoU: ``3 + 3 (iou - t) / (1 - t)`` above the threshold ``t`` (3 at ``t``, 6 at IoU 1) and ``-3 + 2 iou / t``
    below it (-3 at IoU 0, approaching -1 at ``t``)."""
    if not continuous:
        return TRIGGER_REWARD if iou >= threshold else -TRIGGER_REWARD
    if iou >= threshold:
        return TRIGGER_REWARD * (1.0 + (iou - threshold) / max(1.0 - threshold, 1e-9))
    return -TRIGGER_REWARD + 2.0 * iou / threshold


class ActiveEpisode:
    """All the searches of one image for one class (see the module docstring). ``gt_boxes`` ``(N, 4)`` and
    ``difficult`` ``(N,)`` are the class's objects; difficult ones are never targets."""

    def __init__(self, image_key: str, image: np.ndarray, gt_boxes: np.ndarray, difficult: np.ndarray, *,
                 training: bool = True, max_steps: int = 40, max_total_steps: int = 200, history_length: int = 10,
                 trigger_iou: float = 0.6, fine_smaller: bool = False, continuous_trigger: bool = False,
                 alpha: float = ALPHA, fine_alpha: float = FINE_ALPHA, restart_scale: float = RESTART_SCALE,
                 cross_width: float = CROSS_WIDTH, context: int = CONTEXT_PX, stop_when_found: bool = False,
                 state_geometry: bool = False, state_steps: bool = False, index: int = 0) -> None:
        self.image_key = image_key
        self.image = image.copy()  # crosses are painted in place
        self.height, self.width = image.shape[:2]
        self.gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
        self.difficult = np.asarray(difficult, dtype=bool).reshape(-1)
        self.found = np.zeros(len(self.gt_boxes), dtype=bool)
        self.training = training
        self.max_steps = int(max_steps)
        self.max_total_steps = int(max_total_steps)
        self.history_length = int(history_length)
        self.trigger_iou = float(trigger_iou)
        self.num_actions = num_actions(fine_smaller)
        self.continuous_trigger = continuous_trigger
        self.alpha, self.fine_alpha = float(alpha), float(fine_alpha)
        self.restart_scale = float(restart_scale)
        self.cross_width = float(cross_width)
        self.context = int(context)
        self.stop_when_found = stop_when_found
        self.state_geometry = bool(state_geometry)
        self.state_steps = bool(state_steps)
        self.max_searches = max(1, int((~self.difficult).sum()))
        self.index = index
        self.mask_key: tuple[Any, ...] = ()
        self.searches: list[SearchLog] = []
        self.starts: list[tuple[float, float, float, float]] = []
        self.total_steps = 0
        self.finished = False
        self._start_search()

    def _start_search(self) -> None:
        k = 0 if self.training else len(self.searches)
        self.window = restart_box(k, self.width, self.height, self.restart_scale)
        self.starts.append(self.window)
        self.history: list[int] = []
        self.visited = {box_key(self.window)}
        self.log = SearchLog()
        self.searches.append(self.log)

    @property
    def available(self) -> np.ndarray:
        return ~self.difficult & ~self.found

    def target(self) -> tuple[int, float]:
        return choose_target(self.window, self.gt_boxes, self.available)

    def request(self) -> Request:
        """The feature model's request: the box with its context, on the image with its crosses."""
        return Request(self.image_key, self.mask_key, self.image,
                       context_window(self.window, self.width, self.height, self.context))

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
        """The current search has used its steps (or, testing, the image its 200)."""
        if len(self.log.actions) >= self.max_steps:
            return True
        return not self.training and self.total_steps >= self.max_total_steps

    def moved(self, action: int) -> tuple[float, float, float, float]:
        return transform(self.window, action, self.width, self.height, self.alpha, self.fine_alpha)

    def step(self, action: int, q_values: np.ndarray | None = None) -> tuple[float, bool]:
        """Take ``action``; returns ``(reward, terminal)`` (terminal: the trigger). Call :meth:`end_search` after
        a trigger or when :attr:`timed_out`."""
        if self.finished:
            raise RuntimeError(f"{self.image_key}: step() on a finished episode")
        action = int(action)
        if not 0 <= action < self.num_actions:
            raise ValueError(f"action must lie in 0..{self.num_actions - 1}, received {action}")
        target, iou_before = self.target()
        self.log.windows.append([float(v) for v in self.window])
        self.log.actions.append(action)
        self.log.q_values.append(None if q_values is None else [float(v) for v in q_values])
        self.history.append(action)
        self.total_steps += 1
        if action == TRIGGER:
            reward = trigger_reward(iou_before, self.trigger_iou, self.continuous_trigger)
            self.log.rewards.append(reward)
            self.log.triggered = True
            self.log.final_iou = iou_before
            return reward, True
        self.window = self.moved(action)
        self.visited.add(box_key(self.window))
        iou_after = 0.0
        if target >= 0:
            iou_after = float(iou_matrix(np.asarray(self.window)[None], self.gt_boxes[target][None])[0, 0])
        reward = move_reward(iou_before, iou_after)
        self.log.rewards.append(reward)
        self.log.final_iou = self.target()[1]
        return reward, False

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

    def record(self, image_id: str) -> dict[str, Any]:
        """The per-image record of docs/detections_format.md, plus each search's start box."""
        searches = []
        for s, start in zip(self.searches, self.starts):
            if s.actions:
                searches.append({**s.to_record(), "start": [float(v) for v in start]})
        return {
            "image_id": image_id,
            "action_names": list(ACTION_NAMES[: self.num_actions]),
            "width": self.width,
            "height": self.height,
            "ground_truth": [{"box": [float(v) for v in b], "difficult": bool(d)}
                             for b, d in zip(self.gt_boxes, self.difficult)],
            "searches": searches,
            "windows_analysed": int(sum(s["steps"] for s in searches)),
        }

    def revisit_actions(self) -> tuple[int, ...]:
        """The moves that would lead to a box already visited in this search (the current box included: a move
        against the border, which changes nothing). The trigger is never among them."""
        return tuple(a for a in range(self.num_actions)
                     if a != TRIGGER and box_key(self.moved(a)) in self.visited)

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

    def oracle_action(self) -> int:
        """The oracle: trigger at IoU >= the threshold with an available object, else the action of largest IoU
        gain (ties to the lowest index); the trigger when no action raises the IoU."""
        available = self.available
        if not available.any():
            return TRIGGER
        gt = self.gt_boxes[available]
        current = float(iou_matrix(np.asarray(self.window)[None], gt).max())
        if current >= self.trigger_iou:
            return TRIGGER
        moves = [a for a in range(self.num_actions) if a != TRIGGER]
        ious = iou_matrix(np.array([self.moved(a) for a in moves]), gt).max(axis=1)
        best = int(np.argmax(ious))
        return moves[best] if ious[best] > current else TRIGGER


class ActiveEnv(gym.Env):
    """One image's searches as a Gymnasium environment (see the module docstring); ``features`` describes the
    context windows (``None``: observations are the action history alone). Keyword arguments are those of
    :class:`ActiveEpisode`."""

    metadata = {"render_modes": []}

    def __init__(self, image: np.ndarray, gt_boxes: np.ndarray, difficult: np.ndarray | None = None, *,
                 features: Any = None, image_key: str = "image", descriptor_scale: float = 1.0, index: int = 0,
                 **episode: Any) -> None:
        super().__init__()
        self._image = np.asarray(image, dtype=np.uint8)
        self._gt = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
        self._difficult = np.zeros(len(self._gt), bool) if difficult is None else np.asarray(difficult, bool)
        self.features = features
        self.descriptor_scale = float(descriptor_scale)
        self.image_key = image_key
        self.index = index
        self._kwargs = dict(episode, index=index)
        n = num_actions(bool(episode.get("fine_smaller", False)))
        history = int(episode.get("history_length", 10))
        extra = extra_state_size(bool(episode.get("state_geometry")), bool(episode.get("state_steps")))
        self.action_space = spaces.Discrete(n)
        size = (features.descriptor_size if features is not None else 0) + n * history + extra
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float32)
        self.episode: ActiveEpisode | None = None
        self._search_open = False

    def _new_episode(self) -> ActiveEpisode:
        return ActiveEpisode(self.image_key, self._image, self._gt, self._difficult, **self._kwargs)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start the next search (crosses carried over), or the image afresh when it has none left, when a
        ``seed`` is given or with ``options={"restart": True}``."""
        super().reset(seed=seed)
        self.begin_search(restart=seed is not None or bool((options or {}).get("restart")))
        return self.observation(), self.info()

    def begin_search(self, restart: bool = False) -> None:
        if self.episode is None or self.episode.finished or restart:
            self.episode = self._new_episode()
        elif self._search_open and self.episode.log.actions:
            self.episode.end_search()
            if self.episode.finished:
                self.episode = self._new_episode()
        self._search_open = True

    def step(self, action: int):
        reward, terminated, truncated = self.act(action)
        obs = self.observation()
        if terminated or truncated:
            self.close_search()
        return obs, reward, terminated, truncated, self.info()

    def act(self, action: int, q_values: np.ndarray | None = None) -> tuple[float, bool, bool]:
        if self.episode is None or not self._search_open:
            raise RuntimeError(f"{self.image_key}: call reset() before step()")
        if not self.action_space.contains(int(action)):
            raise ValueError(f"action must lie in 0..{self.action_space.n - 1}, received {action}")
        reward, terminated = self.episode.step(int(action), q_values)
        return reward, terminated, (not terminated) and self.episode.timed_out

    def close_search(self) -> None:
        assert self.episode is not None
        self.episode.end_search()
        self._search_open = False

    def observation(self) -> np.ndarray:
        return describe([self], self.features, self.descriptor_scale)[0]

    def request(self) -> Request:
        assert self.episode is not None
        return self.episode.request()

    def history_features(self) -> np.ndarray:
        assert self.episode is not None
        return self.episode.history_features()

    def info(self) -> dict[str, Any]:
        e = self.episode
        assert e is not None
        target, iou = e.target()
        done = e.finished
        return {"image_index": self.index, "window": tuple(e.window), "iou": iou, "target": target,
                "image_done": done, "searches": len(e.searches),
                "oracle_action": TRIGGER if done else e.oracle_action(),
                "positive_actions": () if done else e.positive_actions(),
                "revisit_actions": () if done else e.revisit_actions()}

    @property
    def image_done(self) -> bool:
        return self.episode is not None and self.episode.finished

    def record(self, image_id: str) -> dict[str, Any]:
        assert self.episode is not None
        return self.episode.record(image_id)


__all__ = ["ActiveEnv", "ActiveEpisode", "ACTION_NAMES", "TRIGGER", "FINE_SMALLER", "transform", "context_window",
           "restart_box", "cross_boxes", "paint_cross", "trigger_reward", "move_reward", "num_actions",
           "extra_state_size", "box_key"]
