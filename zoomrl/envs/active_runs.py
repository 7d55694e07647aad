"""The envs of a data set's images under an active run's rules, searches run on them in lockstep batches, the test
policies and training's guided exploration (as :mod:`zoomrl.envs.zoom_runs` for the hierarchy). ``config`` is the
active family's ``Config``: any object with the fields of :class:`~zoomrl.envs.search_config.ActiveTaskConfig`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from zoomrl.data.images import ImageStore, class_objects
from zoomrl.data.voc import VocImage
from zoomrl.envs.active import TRIGGER, ActiveEnv
from zoomrl.envs.vector import records_in_batches


def make_envs(
    images: Sequence[VocImage],
    store: ImageStore,
    config: Any,
    training: bool,
    indices: Sequence[int],
    features: Any = None,
    **extra: Any,
) -> list[ActiveEnv]:
    """One :class:`ActiveEnv` per image of ``indices``, for ``config.class_object`` (``extra``: more
    :class:`~zoomrl.envs.active.ActiveEpisode` arguments)."""
    envs = []
    for i in indices:
        image = images[i]
        pixels = store.get(image)
        boxes, difficult = class_objects(image, pixels, config.class_object)
        envs.append(
            ActiveEnv(
                pixels,
                boxes,
                difficult,
                features=features,
                image_key=image.key,
                descriptor_scale=config.descriptor_scale,
                index=int(i),
                **config.env_kwargs(training),
                **extra,
            )
        )
    return envs


def greedy_policy(indices: np.ndarray, q: np.ndarray | None, infos: list[dict[str, Any]]) -> np.ndarray:
    """The action of highest Q-value (ties to the lowest index)."""
    if q is None:
        raise ValueError("the greedy policy needs Q-values")
    return np.argmax(q, axis=1)


def revisit_free_greedy_policy(indices: np.ndarray, q: np.ndarray | None, infos: list[dict[str, Any]]) -> np.ndarray:
    """The greedy policy that never moves to a box already visited in this search (``info["revisit_actions"]``,
    a move that leaves the box where it is included): the action of highest Q-value among the others. The trigger
    is never a revisit, so an action always remains, and a search cannot cycle: each of its moves reaches a new
    box, and one whose every move is a revisit ends by triggering (the number_of_steps restart still bounds it)."""
    if q is None:
        raise ValueError("the greedy policy needs Q-values")
    masked = np.array(q, dtype=np.float64, copy=True)
    for j, info in enumerate(infos):
        masked[j, list(info["revisit_actions"])] = -np.inf
    return np.argmax(masked, axis=1)


def actions_only(policy: Callable, num_actions: int) -> Callable:
    """``policy`` on the first ``num_actions`` columns of the agent's outputs: a column after the Q-values (the
    IoU head's prediction, which the run loop logs as ``predicted_iou``) is not an action."""

    def chosen(indices: np.ndarray, q: np.ndarray | None, infos: list[dict[str, Any]]) -> np.ndarray:
        return policy(indices, None if q is None else np.asarray(q)[:, :num_actions], infos)

    return chosen


def exploring_policy(policy: Callable, epsilon: float, seed: int, num_actions: int) -> Callable:
    """``policy``, except that with probability ``epsilon`` an image's step is a move drawn uniformly (never the
    trigger, so that no detection is left to chance; among the moves that are not revisits,
    ``info["revisit_actions"]``, while any remains). One generator per image, seeded by ``seed`` and
    ``info["image_index"]``, so an image's draws do not depend on its batch."""
    rngs: dict[int, np.random.Generator] = {}
    moves = [a for a in range(num_actions) if a != TRIGGER]

    def chosen(indices: np.ndarray, q: np.ndarray | None, infos: list[dict[str, Any]]) -> np.ndarray:
        out = np.asarray(policy(indices, q, infos), dtype=np.int64).copy()
        for j, info in enumerate(infos):
            k = int(info["image_index"])
            rng = rngs.setdefault(k, np.random.default_rng([seed, k, 23]))
            if rng.random() < epsilon:
                revisits = set(info.get("revisit_actions") or ())
                fresh = [a for a in moves if a not in revisits]
                out[j] = int(rng.choice(fresh or moves))
        return out

    return chosen


def test_policy(config: Any) -> Callable:
    """The agent's test policy: greedy, avoiding revisits with ``avoid_revisits``, a random move at probability
    ``test_epsilon`` (:func:`exploring_policy`); with the IoU head (``iou_weight > 0``) it reads the Q-values alone
    (:func:`actions_only`)."""
    policy = revisit_free_greedy_policy if config.avoid_revisits else greedy_policy
    epsilon = float(getattr(config, "test_epsilon", 0.0))
    if epsilon > 0:
        policy = exploring_policy(policy, epsilon, int(config.seed), config.num_actions)
    return actions_only(policy, config.num_actions) if getattr(config, "iou_weight", 0) > 0 else policy


def run_records(
    images: Sequence[VocImage],
    store: ImageStore,
    config: Any,
    policy: Callable,
    batch: int,
    features: Any = None,
    q_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    progress: Callable[[int], None] | None = None,
    oracle: bool = False,
) -> list[dict[str, Any]]:
    """Run ``policy`` on every image (testing behaviour), ``batch`` images in lockstep; one record per image.
    ``oracle``: an image ends once its objects are all found (the oracle knows when)."""
    ids = [im.image_id for im in images]

    def envs_for(idx: list[int]) -> list[ActiveEnv]:
        return make_envs(images, store, config, False, idx, features, stop_when_found=oracle)

    return records_in_batches(ids, batch, envs_for, features, config.descriptor_scale, policy, q_fn, progress)


def guided_choice(
    q: np.ndarray,
    epsilon: float,
    positive: Sequence[int],
    rng: np.random.Generator,
    guided: bool = True,
    explore_trigger: float = 0.0,
) -> int:
    """Epsilon-greedy with guided exploration: with probability ``epsilon`` a uniform draw among ``positive``
    (the actions whose reward would be positive), or among all ``len(q)`` actions when there is none or
    ``guided`` is off; else ``argmax q``. ``explore_trigger``: an exploratory action is the trigger with this
    probability, wherever the box is (so wrong triggers are tried too). The draw order is fixed (one uniform, one
    integer, and when exploring with ``explore_trigger > 0`` one more uniform)."""
    explore = rng.random() < epsilon
    draw = int(rng.integers(1 << 30))
    if not explore:
        return int(np.argmax(q))
    if explore_trigger > 0 and rng.random() < explore_trigger:
        return TRIGGER
    choices = list(positive) if guided and len(positive) else list(range(len(q)))
    return int(choices[draw % len(choices)])


__all__ = [
    "actions_only",
    "greedy_policy",
    "guided_choice",
    "make_envs",
    "revisit_free_greedy_policy",
    "run_records",
    "test_policy",
]
