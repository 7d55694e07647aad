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
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from zoomrl.core.geometry import child, children, iou_matrix, pixel_window
from zoomrl.envs.rewards import move_reward, trigger_reward
from zoomrl.vision.features import Request

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
    """One-hot encoding of the last ``length`` actions, most recent first: ``(length * num_actions,)`` float32.

    Slot ``k`` (values ``num_actions * k ..``) holds the ``k``-th most recent action; slots before the first
    action are all zero.
    """
    out = np.zeros(length * num_actions, dtype=np.float32)
    for k, a in enumerate(reversed(list(actions)[-length:])):
        out[k * num_actions + int(a)] = 1.0
    return out


MIRRORED_ACTION = (TOP_RIGHT, TOP_LEFT, BOTTOM_RIGHT, BOTTOM_LEFT, CENTRE, TRIGGER)
"""The action that does in a horizontally flipped image what each action does in the original: left and right
corners swap; the centre and the trigger stay."""


def mirror_boxes(boxes, width: float) -> np.ndarray:
    """Boxes ``(..., 4)`` (pixel edges) of an image ``width`` wide, in the image flipped left to right:
    ``x1' = width - x2``, ``x2' = width - x1``."""
    b = np.asarray(boxes, dtype=np.float64)
    return np.stack([width - b[..., 2], b[..., 1], width - b[..., 0], b[..., 3]], axis=-1)


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
    """What one search did: windows visited, actions, Q-values and, for an agent with the IoU head, its predicted
    IoU of each window (see docs/detections_format.md)."""

    windows: list[list[float]] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    q_values: list[list[float] | None] = field(default_factory=list)
    predicted_iou: list[float | None] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    triggered: bool = False
    final_iou: float = 0.0

    def to_record(self) -> dict[str, Any]:
        box = self.windows[-1] if self.triggered else None
        score = None
        if self.triggered and self.q_values and self.q_values[-1] is not None:
            score = float(self.q_values[-1][self.actions[-1]])
        qs = None if all(q is None for q in self.q_values) else self.q_values
        extra = {} if all(v is None for v in self.predicted_iou) else {"predicted_iou": self.predicted_iou}
        return {**extra,
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

    Training can follow the test's rules instead (issue 17; each off by default, so training stays the paper's):
    ``paint_window`` paints the triggered window after every trigger, as testing does; ``search_until_miss`` runs
    up to ``max_searches`` searches and ends the image at the first search without a trigger, so searches go on
    after the last object (where any trigger is wrong, -3). ``nothing_left_reward`` is what a move earns when no
    object is left to find (paper: -1, as any move that does not raise the IoU; 0 makes searching on without a
    trigger worth more than a wrong trigger, so "nothing left" is learnable). ``teach_iou`` is the IoU at which the
    oracle (and so the forced trigger, :meth:`teach_trigger`) triggers (None: ``trigger_iou``); below it the oracle
    zooms on while a child raises the IoU, and triggers at the local maximum.
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
        paint_window: bool | None = None,
        search_until_miss: bool | None = None,
        nothing_left_reward: float = -1.0,
        teach_iou: float | None = None,
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
        self.paint_window = (not training) if paint_window is None else bool(paint_window)
        self.search_until_miss = (not training) if search_until_miss is None else bool(search_until_miss)
        self.nothing_left_reward = float(nothing_left_reward)
        self.teach_iou = self.trigger_iou if teach_iou is None else float(teach_iou)
        n_targets = int((~self.difficult).sum())
        self.max_searches = int(max_searches) if self.search_until_miss else max(1, n_targets)
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

        The window is logged with its Q-values before it changes. ``q_values`` may carry one more value after the
        ``NUM_ACTIONS`` Q-values: the IoU head's prediction for the window, logged as ``predicted_iou``. The
        search is not advanced past its end here: call :meth:`end_search` after a trigger, or when
        :attr:`timed_out`.
        """
        if self.finished:
            raise RuntimeError(f"{self.image_key}: step() on a finished episode")
        action = int(action)
        if not 0 <= action < NUM_ACTIONS:
            raise ValueError(f"action must lie in 0..{NUM_ACTIONS - 1}, received {action}")
        target, iou_before = self.target()
        self.log.windows.append([float(v) for v in self.window])
        self.log.actions.append(action)
        self.log.q_values.append(None if q_values is None else [float(v) for v in q_values[:NUM_ACTIONS]])
        has_iou = q_values is not None and len(q_values) > NUM_ACTIONS
        self.log.predicted_iou.append(float(q_values[NUM_ACTIONS]) if has_iou else None)
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
        reward = move_reward(iou_before, iou_after) if target >= 0 else self.nothing_left_reward
        self.log.rewards.append(reward)
        self.log.final_iou = self.target()[1]
        return reward, False

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

    def _paint(self, box) -> None:
        self.mask_key = self.mask_key + (paint(self.image, box),)

    # --- output -------------------------------------------------------------------------------------------
    def record(self, image_id: str) -> dict[str, Any]:
        """The per-image record of docs/detections_format.md."""
        searches = [s.to_record() for s in self.searches if s.actions]
        return {
            "image_id": image_id,
            "action_names": list(ACTION_NAMES),
            "width": self.width,
            "height": self.height,
            "ground_truth": [
                {"box": [float(v) for v in b], "difficult": bool(d)} for b, d in zip(self.gt_boxes, self.difficult)
            ],
            "searches": searches,
            "windows_analysed": int(sum(s["steps"] for s in searches)),
        }

    # --- privileged information: baselines and demonstrations only -----------------------------------------
    def oracle_action(self) -> int:
        """The oracle's action: trigger once the window's IoU with a remaining object is >= ``teach_iou`` (by
        default ``trigger_iou``), else move to the child with the highest IoU, and trigger when no child improves
        (an upper bound of what the hierarchy can find)."""
        available = self.available
        if not available.any():
            return TRIGGER
        gt = self.gt_boxes[available]
        current = float(iou_matrix(np.asarray(self.window)[None], gt).max())
        if current >= self.teach_iou:
            return TRIGGER
        child_ious = iou_matrix(children(self.window, self.scale), gt).max(axis=1)
        best = int(np.argmax(child_ious))
        return best if child_ious[best] > current else TRIGGER

    def teach_trigger(self) -> bool:
        """Whether training forces the trigger here (paper 3.4): the oracle would trigger and the trigger is right
        (IoU >= ``trigger_iou``). With the default ``teach_iou`` this is the paper's "IoU >= 0.5"; with a higher
        one, the first window at ``teach_iou``, or a local maximum (no child raises the IoU) of an IoU that
        passes the test."""
        target, iou = self.target()
        return target >= 0 and iou >= self.trigger_iou and self.oracle_action() == TRIGGER


def describe(episodes: Sequence[Any], features: Any, descriptor_scale: float = 1.0) -> np.ndarray:
    """Observations ``(N, descriptor + history)`` of the current windows of ``episodes`` (anything with
    ``request()`` and ``history_features()``: image episodes or the environments themselves), one batched
    feature call."""
    if not episodes:
        size = features.descriptor_size if features is not None else 0
        return np.zeros((0, size), dtype=np.float32)
    history = np.stack([e.history_features() for e in episodes])
    if features is None:
        return history
    descriptors = features.describe([e.request() for e in episodes])
    if descriptor_scale != 1.0:
        descriptors = descriptors * np.float32(descriptor_scale)
    return np.concatenate([descriptors, history], axis=1).astype(np.float32, copy=False)


class ZoomEnv(gym.Env):
    """One image's searches as a Gymnasium environment (see the module docstring).

    ``features`` is a :class:`~zoomrl.vision.features.FeatureModel` (anything with ``describe(requests)`` and
    ``descriptor_size``); ``None`` gives observations made of the action history alone. ``training`` selects the
    training behaviour (paint the ground truth of a found object; one search per object) or the testing one (paint
    the triggered window; up to ``max_searches``)."""

    metadata = {"render_modes": []}

    def __init__(self, image: np.ndarray, gt_boxes: np.ndarray, difficult: np.ndarray | None = None, *,
                 features: Any = None, image_key: str = "image", scale: float = 0.75, max_steps: int = 10,
                 history_length: int = 4, trigger_iou: float = 0.5, training: bool = True, max_searches: int = 3,
                 descriptor_scale: float = 1.0, index: int = 0, **rules: Any) -> None:
        """``rules``: :class:`ImageEpisode`'s ``paint_window``, ``search_until_miss``, ``nothing_left_reward`` and
        ``teach_iou`` (training that follows the test's rules; see there)."""
        super().__init__()
        self._image = np.asarray(image, dtype=np.uint8)
        self._gt = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
        self._difficult = np.zeros(len(self._gt), bool) if difficult is None else np.asarray(difficult, bool)
        self.features = features
        self.descriptor_scale = float(descriptor_scale)
        self._kwargs = dict(scale=scale, max_steps=max_steps, history_length=history_length, trigger_iou=trigger_iou,
                            training=training, max_searches=max_searches, index=index, **rules)
        self.image_key = image_key
        self.index = index
        """The image's index in its data set (seeds per-image random streams)."""
        self.action_space = spaces.Discrete(NUM_ACTIONS)
        size = (features.descriptor_size if features is not None else 0) + NUM_ACTIONS * history_length
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float32)
        self.episode: ImageEpisode | None = None
        self._search_open = False

    # --- Gymnasium API --------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start the next search of the image (painting carried over), or the image afresh when it has no
        search left, when a ``seed`` is given, or with ``options={"restart": True}``. Returns
        ``(observation, info)``."""
        super().reset(seed=seed)
        self.begin_search(restart=seed is not None or bool((options or {}).get("restart")))
        return self.observation(), self.info()

    def begin_search(self, restart: bool = False) -> None:
        """What :meth:`reset` does, without computing the observation (the vector env batches those)."""
        if self.episode is None or self.episode.finished or restart:
            self.episode = ImageEpisode(self.image_key, self._image, self._gt, self._difficult, **self._kwargs)
        elif self._search_open and self.episode.log.actions:
            # reset() in the middle of a search abandons it: close it as the step limit would.
            self.episode.end_search()
            if self.episode.finished:
                self.episode = ImageEpisode(self.image_key, self._image, self._gt, self._difficult, **self._kwargs)
        self._search_open = True

    def step(self, action: int):
        """Gymnasium's step: ``(observation, reward, terminated, truncated, info)``."""
        reward, terminated, truncated = self.act(action)
        obs = self.observation()
        if terminated or truncated:
            self.close_search()
        return obs, reward, terminated, truncated, self.info()

    # --- the pieces, for the lockstep vector environment ------------------------------------------------------
    def act(self, action: int, q_values: np.ndarray | None = None) -> tuple[float, bool, bool]:
        """Apply ``action`` (logging ``q_values``); returns ``(reward, terminated, truncated)``. The search stays
        open, so its final observation can still be computed, until :meth:`close_search`."""
        if self.episode is None or not self._search_open:
            raise RuntimeError(f"{self.image_key}: call reset() before step()")
        if not self.action_space.contains(int(action)):
            raise ValueError(f"action must lie in 0..{NUM_ACTIONS - 1}, received {action}")
        reward, terminated = self.episode.step(int(action), q_values)
        return reward, terminated, (not terminated) and self.episode.timed_out

    def close_search(self) -> None:
        """End the current search: paint what was found; the next :meth:`reset` starts the next search."""
        assert self.episode is not None
        self.episode.end_search()
        self._search_open = False

    def observation(self) -> np.ndarray:
        return describe([self], self.features, self.descriptor_scale)[0]

    def request(self) -> Request:
        """What the feature model needs to describe the current window."""
        assert self.episode is not None
        return self.episode.request()

    def history_features(self) -> np.ndarray:
        assert self.episode is not None
        return self.episode.history_features()

    def info(self) -> dict[str, Any]:
        e = self.episode
        assert e is not None
        target, iou = e.target()
        return {"image_index": self.index, "window": tuple(e.window), "iou": iou, "target": target,
                "image_done": e.finished, "searches": len(e.searches),
                "oracle_action": e.oracle_action() if not e.finished else TRIGGER,
                "teach_trigger": (not e.finished) and e.teach_trigger()}

    @property
    def image_done(self) -> bool:
        return self.episode is not None and self.episode.finished

    def record(self, image_id: str) -> dict[str, Any]:
        assert self.episode is not None
        return self.episode.record(image_id)
