"""What every window-searching environment of this project shares: the record of a search, the state machine of one
image's searches (:class:`SearchEpisode`) and its Gymnasium wrapper (:class:`SearchEnv`).

A family's environment (:class:`zoomrl.envs.zoom.ZoomEnv`, :class:`zoomrl.envs.active.ActiveEnv`) says only what is
its own: how an action moves the window, the trigger's reward, what is painted after a search and when the image is
done, what the state holds after the descriptor, and which privileged hints ``info`` carries. The rest is here once:

* the Gymnasium API: ``reset(seed=, options=) -> (observation, info)``, ``step(action) -> (observation, reward,
  terminated, truncated, info)``, ``action_space`` (``Discrete``), ``observation_space`` (a float32 ``Box``);
* the lockstep pieces :class:`zoomrl.envs.vector.ZoomVectorEnv` drives (``begin_search``, ``act``, ``close_search``,
  ``request``, ``history_features``, ``image_done``), so that many images share one batched feature call;
* one step of a search: the window and action logged before the window changes, +1/-1 as a move raises the IoU with
  the target or not, the trigger ends the search;
* the oracle (the move of highest IoU with an available object, the trigger at the teaching threshold or when no
  move improves) and the per-image record of docs/detections_format.md.

Plain NumPy: no framework.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from zoomrl.core.geometry import iou_matrix
from zoomrl.envs.rewards import move_reward
from zoomrl.vision.features import Request

Box = tuple[float, float, float, float]


def history_vector(actions: Sequence[int], length: int, num_actions: int) -> np.ndarray:
    """One-hot encoding of the last ``length`` actions, most recent first: ``(length * num_actions,)`` float32.

    Slot ``k`` (values ``num_actions * k ..``) holds the ``k``-th most recent action; slots before the first
    action are all zero.
    """
    out = np.zeros(length * num_actions, dtype=np.float32)
    for k, a in enumerate(reversed(list(actions)[-length:])):
        out[k * num_actions + int(a)] = 1.0
    return out


def choose_target(window: Sequence[float], gt_boxes: np.ndarray, available: np.ndarray) -> tuple[int, float]:
    """Among the ``available`` ground-truth boxes, the one with the highest IoU with ``window``.

    Returns ``(index into gt_boxes, IoU)``, or ``(-1, 0.0)`` when none is available. Ties go to the lowest index.
    """
    if gt_boxes.shape[0] == 0 or not available.any():
        return -1, 0.0
    ious = iou_matrix(np.asarray(window, dtype=np.float64)[None], gt_boxes)[0]
    ious = np.where(available, ious, -1.0)
    idx = int(np.argmax(ious))
    return idx, float(ious[idx])


def box_key(box: Sequence[float]) -> tuple[float, ...]:
    """A hashable identity of a box, to a thousandth of a pixel (a move and its opposite may leave a box that
    differs from the first by float rounding only)."""
    return tuple(round(float(v), 3) for v in box)


@dataclass
class SearchLog:
    """What one search did: windows visited, actions, rewards and what the agent said of each window (its
    Q-values and, with the IoU head, its predicted IoU; see docs/detections_format.md). The environment logs the
    windows, actions and rewards; the run loop logs the agent's outputs (:meth:`log_outputs`, after each step:
    :func:`zoomrl.envs.vector.run_vector`), so that the environment's dynamics never see them."""

    windows: list[list[float]] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    q_values: list[list[float] | None] = field(default_factory=list)
    predicted_iou: list[float | None] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    triggered: bool = False
    final_iou: float = 0.0

    def log_outputs(self, outputs: Sequence[float] | None, num_actions: int) -> None:
        """Log the agent's outputs for the window of the last action: the first ``num_actions`` values are its
        Q-values; one more value is the IoU head's prediction for the window (``predicted_iou``)."""
        self.q_values.append(None if outputs is None else [float(v) for v in outputs[:num_actions]])
        has_iou = outputs is not None and len(outputs) > num_actions
        self.predicted_iou.append(float(outputs[num_actions]) if has_iou else None)

    def to_record(self) -> dict[str, Any]:
        box = self.windows[-1] if self.triggered else None
        score = None
        if self.triggered and self.q_values and self.q_values[-1] is not None:
            score = float(self.q_values[-1][self.actions[-1]])
        qs = None if all(q is None for q in self.q_values) else self.q_values
        extra = {} if all(v is None for v in self.predicted_iou) else {"predicted_iou": self.predicted_iou}
        return {
            **extra,
            "windows": self.windows,
            "actions": self.actions,
            "q_values": qs,
            "triggered": self.triggered,
            "box": box,
            "score": score,
            "steps": len(self.actions),
        }


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


class SearchEpisode:
    """All the searches of one image for one class: the plain NumPy state machine a :class:`SearchEnv` wraps.

    ``gt_boxes`` ``(N, 4)`` and ``difficult`` ``(N,)`` are the class's objects; difficult objects are never
    targets. A subclass sets :attr:`action_names`, :attr:`trigger` and :attr:`num_actions`, calls
    :meth:`_setup` then starts its first search, and implements :meth:`moved`, :meth:`trigger_reward`,
    :meth:`_start_search` and :meth:`end_search`."""

    action_names: tuple[str, ...] = ()
    trigger: int = -1
    num_actions: int = 0
    nothing_left_reward: float = -1.0
    """What a move earns when no object is left to find (-1: as any move that does not raise the IoU)."""

    def _setup(
        self,
        image_key: str,
        image: np.ndarray,
        gt_boxes: np.ndarray,
        difficult: np.ndarray,
        training: bool,
        max_steps: int,
        history_length: int,
        trigger_iou: float,
        index: int,
    ) -> None:
        """Positional, so that each family's constructor passes its arguments on in one line."""
        self.image_key = image_key
        self.image = image.copy()  # painted in place after searches
        self.height, self.width = image.shape[:2]
        self.gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
        self.difficult = np.asarray(difficult, dtype=bool).reshape(-1)
        self.found = np.zeros(len(self.gt_boxes), dtype=bool)
        self.training = training
        self.max_steps = int(max_steps)
        self.history_length = int(history_length)
        self.trigger_iou = float(trigger_iou)
        self.teach_iou = self.trigger_iou
        self.index = index
        self.mask_key: tuple[Any, ...] = ()
        self.searches: list[SearchLog] = []
        self.total_steps = 0
        self.finished = False

    def _open_log(self, window: Box) -> None:
        """Start a search's state at ``window``: empty history, a new log."""
        self.window = window
        self.history: list[int] = []
        self.visited = {box_key(window)}
        self.log = SearchLog()
        self.searches.append(self.log)

    # --- what a family defines ----------------------------------------------------------------------------------
    def _start_search(self) -> None:
        raise NotImplementedError

    def end_search(self) -> None:
        """Close the current search (paint what was found), then start the next one or finish the image."""
        raise NotImplementedError

    def moved(self, action: int) -> Box:
        """The window after move ``action``."""
        raise NotImplementedError

    def trigger_reward(self, iou: float) -> float:
        raise NotImplementedError

    def _search_record(self, k: int, log: SearchLog) -> dict[str, Any]:
        """The record of search ``k`` (docs/detections_format.md)."""
        return log.to_record()

    # --- state --------------------------------------------------------------------------------------------------
    @property
    def available(self) -> np.ndarray:
        """Objects that can still be targets: not difficult and not found yet."""
        return ~self.difficult & ~self.found

    def target(self) -> tuple[int, float]:
        """The current target (highest IoU with the window among available objects) and that IoU."""
        return choose_target(self.window, self.gt_boxes, self.available)

    def view(self) -> Box:
        """The window the feature model describes (the current window, or a family's padding of it)."""
        return self.window

    def request(self) -> Request:
        """What the feature model needs to describe the current window, on the image as painted so far."""
        return Request(self.image_key, self.mask_key, self.image, self.view())

    def history_features(self) -> np.ndarray:
        return history_vector(self.history, self.history_length, self.num_actions)

    @property
    def timed_out(self) -> bool:
        """The current search has used all its steps without a trigger."""
        return len(self.log.actions) >= self.max_steps

    # --- dynamics -----------------------------------------------------------------------------------------------
    def step(self, action: int) -> tuple[float, bool]:
        """Take ``action`` in the current window. Returns ``(reward, terminal)``; terminal means the trigger.

        The window is logged before it changes (the agent's outputs for it are the run loop's to log, see
        :meth:`SearchLog.log_outputs`). The search is not advanced past its end here: call :meth:`end_search` after
        a trigger, or when :attr:`timed_out`.
        """
        if self.finished:
            raise RuntimeError(f"{self.image_key}: step() on a finished episode")
        action = int(action)
        if not 0 <= action < self.num_actions:
            raise ValueError(f"action must lie in 0..{self.num_actions - 1}, received {action}")
        target, iou_before = self.target()
        self.log.windows.append([float(v) for v in self.window])
        self.log.actions.append(action)
        self.history.append(action)
        self.total_steps += 1
        if action == self.trigger:
            reward = self.trigger_reward(iou_before)
            self.log.rewards.append(reward)
            self.log.triggered = True
            self.log.final_iou = iou_before
            return reward, True
        self.window = self.moved(action)
        self.visited.add(box_key(self.window))
        iou_after = 0.0
        if target >= 0:
            iou_after = float(iou_matrix(np.asarray(self.window)[None], self.gt_boxes[target][None])[0, 0])
        reward = move_reward(iou_before, iou_after) if target >= 0 else self.nothing_left_reward
        self.log.rewards.append(reward)
        self.log.final_iou = self.target()[1]
        return reward, False

    # --- output -------------------------------------------------------------------------------------------------
    def record(self, image_id: str) -> dict[str, Any]:
        """The per-image record of docs/detections_format.md."""
        searches = [self._search_record(k, s) for k, s in enumerate(self.searches) if s.actions]
        return {
            "image_id": image_id,
            "action_names": list(self.action_names[: self.num_actions]),
            "width": self.width,
            "height": self.height,
            "ground_truth": [
                {"box": [float(v) for v in b], "difficult": bool(d)} for b, d in zip(self.gt_boxes, self.difficult)
            ],
            "searches": searches,
            "windows_analysed": int(sum(s["steps"] for s in searches)),
        }

    # --- privileged information: exploration, baselines and demonstrations only ---------------------------------
    def candidate_moves(self) -> tuple[list[int], np.ndarray]:
        """The moves the oracle weighs and their windows ``(M, 4)``."""
        moves = [a for a in range(self.num_actions) if a != self.trigger]
        return moves, np.array([self.moved(a) for a in moves], dtype=np.float64)

    def oracle_action(self) -> int:
        """The oracle's action: trigger once the window's IoU with a remaining object is >= ``teach_iou``, else
        the move of highest IoU (ties to the lowest index), and the trigger when no move raises the IoU (an
        upper bound of what the moves can find)."""
        available = self.available
        if not available.any():
            return self.trigger
        gt = self.gt_boxes[available]
        current = float(iou_matrix(np.asarray(self.window)[None], gt).max())
        if current >= self.teach_iou:
            return self.trigger
        moves, boxes = self.candidate_moves()
        ious = iou_matrix(boxes, gt).max(axis=1)
        best = int(np.argmax(ious))
        return moves[best] if ious[best] > current else self.trigger


class SearchEnv(gym.Env):
    """One image's searches as a Gymnasium environment over a :class:`SearchEpisode` (see the module docstring).

    ``features`` is a :class:`~zoomrl.vision.features.FeatureModel` (anything with ``describe(requests)`` and
    ``descriptor_size``); ``None`` gives observations made of the state after the descriptor alone. A subclass
    calls :meth:`_setup` and implements :meth:`_new_episode` (and :meth:`_hints` for its privileged ``info``)."""

    metadata = {"render_modes": []}

    def _setup(
        self,
        image: np.ndarray,
        gt_boxes: np.ndarray,
        difficult: np.ndarray | None,
        *,
        features: Any,
        image_key: str,
        descriptor_scale: float,
        index: int,
        num_actions: int,
        state_tail: int,
    ) -> None:
        """``state_tail``: how many values the state holds after the descriptor."""
        self._image = np.asarray(image, dtype=np.uint8)
        self._gt = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
        self._difficult = np.zeros(len(self._gt), bool) if difficult is None else np.asarray(difficult, bool)
        self.features = features
        self.descriptor_scale = float(descriptor_scale)
        self.image_key = image_key
        self.index = index
        """The image's index in its data set (seeds per-image random streams)."""
        self.action_space = spaces.Discrete(num_actions)
        size = (features.descriptor_size if features is not None else 0) + state_tail
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float32)
        self.episode: SearchEpisode | None = None
        self._search_open = False

    def _new_episode(self) -> SearchEpisode:
        raise NotImplementedError

    def _hints(self, e: SearchEpisode) -> dict[str, Any]:
        """The ``info`` entries after ``oracle_action`` (the episode is not finished)."""
        return {}

    def _done_hints(self) -> dict[str, Any]:
        """The same entries once the image is done."""
        return {}

    # --- Gymnasium API ------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start the next search of the image (painting carried over), or the image afresh when it has no
        search left, when a ``seed`` is given, or with ``options={"restart": True}``. Returns
        ``(observation, info)``."""
        super().reset(seed=seed)
        self.begin_search(restart=seed is not None or bool((options or {}).get("restart")))
        return self.observation(), self.info()

    def step(self, action: int):
        """Gymnasium's step: ``(observation, reward, terminated, truncated, info)``."""
        reward, terminated, truncated = self.act(action)
        obs = self.observation()
        if terminated or truncated:
            self.close_search()
        return obs, reward, terminated, truncated, self.info()

    # --- the pieces, for the lockstep vector environment --------------------------------------------------------
    def begin_search(self, restart: bool = False) -> None:
        """What :meth:`reset` does, without computing the observation (the vector env batches those)."""
        if self.episode is None or self.episode.finished or restart:
            self.episode = self._new_episode()
        elif self._search_open and self.episode.log.actions:
            # reset() in the middle of a search abandons it: close it as the step limit would.
            self.episode.end_search()
            if self.episode.finished:
                self.episode = self._new_episode()
        self._search_open = True

    def act(self, action: int) -> tuple[float, bool, bool]:
        """Apply ``action``; returns ``(reward, terminated, truncated)``. The search stays open, so its final
        observation can still be computed (and the agent's outputs logged in :attr:`search_log`), until
        :meth:`close_search`."""
        if self.episode is None or not self._search_open:
            raise RuntimeError(f"{self.image_key}: call reset() before step()")
        if not self.action_space.contains(int(action)):
            raise ValueError(f"action must lie in 0..{self.action_space.n - 1}, received {action}")
        reward, terminated = self.episode.step(int(action))
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
        done = e.finished
        return {
            "image_index": self.index,
            "window": tuple(e.window),
            "iou": iou,
            "target": target,
            "image_done": done,
            "searches": len(e.searches),
            "oracle_action": e.trigger if done else e.oracle_action(),
            **(self._done_hints() if done else self._hints(e)),
        }

    @property
    def image_done(self) -> bool:
        return self.episode is not None and self.episode.finished

    @property
    def search_log(self) -> SearchLog:
        """The log of the current search (the last one once the image is done): where a run loop logs what the
        agent said of each window (:meth:`SearchLog.log_outputs`)."""
        assert self.episode is not None
        return self.episode.log

    def record(self, image_id: str) -> dict[str, Any]:
        assert self.episode is not None
        return self.episode.record(image_id)
