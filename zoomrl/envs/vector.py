"""Many zoom environments in lockstep, as one vector environment with one batched feature call per step.

Semantics follow Gymnasium's vector environments with next-step autoreset: when a sub-environment's search ends
(trigger or step limit), :meth:`ZoomVectorEnv.step` returns that search's final observation, and the *next* call
starts its next search (its action is ignored, its reward is 0). Unlike Gymnasium's, a sub-environment whose image
has no search left stops for good (``alive`` turns false) instead of starting the image again: a pass over a data
set visits each image's searches once. Every step computes, in one call of the feature model, the observations of
all sub-environments that need one: the windows just reached and the first windows of restarted searches (and,
with ``final_observations``, the last window of a search cut by the step limit, which training needs to
bootstrap; testing skips it and saves the backbone pass).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from zoomrl.envs.zoom import describe


class VectorStep(NamedTuple):
    observations: np.ndarray
    """``(N, S)``: the new observation of every sub-environment (zeros where none was computed)."""
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    infos: list[dict[str, Any] | None]
    computed: np.ndarray
    """``(N,)`` bool: whose observation this step computed."""


class LockstepEnv(Protocol):
    """What a sub-environment offers the vector env (:class:`zoomrl.envs.zoom.ZoomEnv` is the reference; any
    window-searching ``gymnasium.Env`` of this project implements the same methods)."""

    observation_space: Any
    action_space: Any

    def begin_search(self, restart: bool = False) -> None: ...
    def act(self, action: int) -> tuple[float, bool, bool]: ...
    def close_search(self) -> None: ...
    def request(self) -> Any: ...
    def history_features(self) -> np.ndarray: ...
    def info(self) -> dict[str, Any]: ...
    def record(self, image_id: str) -> dict[str, Any]: ...
    @property
    def image_done(self) -> bool: ...

    # and, for run_vector(record_outputs=True) with Q-values: ``search_log``, the current search's SearchLog


class ZoomVectorEnv:
    """``envs`` stepped together (see the module docstring); ``features`` computes every observation."""

    def __init__(
        self, envs: Sequence[LockstepEnv], features: Any, descriptor_scale: float = 1.0, final_observations: bool = True
    ) -> None:
        self.envs = list(envs)
        self.features = features
        self.descriptor_scale = float(descriptor_scale)
        self.final_observations = final_observations
        n = len(self.envs)
        self.alive = np.zeros(n, dtype=bool)
        self.needs_reset = np.zeros(n, dtype=bool)
        self.single_observation_size = self.envs[0].observation_space.shape[0] if self.envs else 0
        self.num_actions = int(self.envs[0].action_space.n) if self.envs else 0

    @property
    def num_envs(self) -> int:
        return len(self.envs)

    @property
    def acting(self) -> np.ndarray:
        """Indices of the sub-environments whose action the next :meth:`step` uses."""
        return np.flatnonzero(self.alive & ~self.needs_reset)

    def _observe(self, indices: Sequence[int]) -> np.ndarray:
        out = np.zeros((self.num_envs, self.single_observation_size), dtype=np.float32)
        if len(indices):
            out[list(indices)] = describe([self.envs[i] for i in indices], self.features, self.descriptor_scale)
        return out

    def __len__(self) -> int:
        return self.num_envs

    def reset(self) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Start every image afresh; returns the observations ``(N, S)`` and infos."""
        for env in self.envs:
            env.begin_search(restart=True)
        self.alive[:] = True
        self.needs_reset[:] = False
        obs = self._observe(range(self.num_envs))
        return obs, [env.info() for env in self.envs]

    def step(self, actions: np.ndarray) -> VectorStep:
        """Apply ``actions[i]`` to every acting sub-environment; restart the searches that ended at the previous
        step. Rows of sub-environments that did not act hold reward 0."""
        n = self.num_envs
        rewards = np.zeros(n, dtype=np.float32)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        need: list[int] = []
        for i in np.flatnonzero(self.alive & self.needs_reset):
            env = self.envs[i]
            env.close_search()
            self.needs_reset[i] = False
            if env.image_done:
                self.alive[i] = False
            else:
                env.begin_search()
                need.append(int(i))
        for i in self.acting:
            if i in need:
                continue
            env = self.envs[i]
            r, term, trunc = env.act(int(actions[i]))
            rewards[i], terminated[i], truncated[i] = r, term, trunc
            if term or trunc:
                self.needs_reset[i] = True
                if trunc and self.final_observations:
                    need.append(int(i))
            else:
                need.append(int(i))
        need = sorted(need)
        obs = self._observe(need)
        computed = np.zeros(n, dtype=bool)
        computed[need] = True
        infos = [env.info() if self.alive[i] else None for i, env in enumerate(self.envs)]
        return VectorStep(obs, rewards, terminated, truncated, infos, computed)


Policy = Callable[[np.ndarray, np.ndarray | None, list[dict[str, Any] | None]], np.ndarray]
"""``policy(indices, q_values_or_None, infos) -> actions`` for the acting sub-environments ``indices``."""


def records_in_batches(
    image_ids: Sequence[str],
    batch: int,
    envs_for: Callable[[list[int]], list[Any]],
    features: Any,
    descriptor_scale: float,
    policy: Policy,
    q_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ``policy`` on every image, ``batch`` images in lockstep (``envs_for(indices)``: their envs, testing's
    rules); one record per image (``env.record(image id)``), in input order."""
    records: list[dict[str, Any]] = []
    for start in range(0, len(image_ids), batch):
        idx = list(range(start, min(start + batch, len(image_ids))))
        envs = envs_for(idx)
        run_vector(ZoomVectorEnv(envs, features, descriptor_scale, final_observations=False), policy, q_fn)
        records.extend(env.record(image_ids[i]) for env, i in zip(envs, idx))
        if progress is not None:
            progress(len(idx))
    return records


def run_vector(
    vec: ZoomVectorEnv,
    policy: Policy,
    q_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    on_step: Callable[[np.ndarray, np.ndarray, np.ndarray, VectorStep, np.ndarray], None] | None = None,
    record_outputs: bool = True,
) -> int:
    """Run every sub-environment until its image is done; returns the number of actions taken.

    Each step: Q-values of the acting observations (one batched call of ``q_fn``), the policy's actions, one
    vector step; ``on_step(indices, observations, actions, step, next_observations, infos)`` sees each
    transition batch, ``infos`` being those of ``observations`` (training stores them and learns). With
    ``record_outputs`` the loop logs each acting env's row of ``q_fn`` in its current search's log
    (``env.search_log``: the Q-values, and an extra column as the predicted IoU), where the records, the
    detection scores and the pictures read them; the envs themselves never see the agent's outputs. Training,
    which reads no record, passes False. The loop knows nothing of saving."""
    obs, infos = vec.reset()
    total = 0
    while vec.alive.any():
        idx = vec.acting
        q = q_fn(obs[idx]) if len(idx) and q_fn is not None else None
        actions = np.zeros(vec.num_envs, dtype=np.int64)
        if len(idx):
            actions[idx] = policy(idx, q, [infos[i] for i in idx])
        step = vec.step(actions)
        if record_outputs and q is not None:
            # The search an env just acted in stays open until its next step, so this is the log of that action.
            # Logged as float32, the precision the records have always held whatever q_fn returns.
            rows = np.asarray(q, dtype=np.float32)
            for j, i in enumerate(idx):
                vec.envs[i].search_log.log_outputs(rows[j], vec.num_actions)
        total += len(idx)
        if on_step is not None and len(idx):
            on_step(idx, obs[idx], actions[idx], step, step.observations[idx], [infos[i] for i in idx])
        # Rows that were not recomputed (finished images, terminal steps) keep their old value: never acted on.
        obs = np.where(step.computed[:, None], step.observations, obs)
        infos = [step.infos[i] if step.infos[i] is not None else infos[i] for i in range(vec.num_envs)]
    return total
