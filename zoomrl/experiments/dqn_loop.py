"""The run loop every value-based family shares (hierarchical, active): oracle demonstrations and one
epsilon-greedy pass over the training images, ``batch`` images at a time in a
:class:`~zoomrl.envs.vector.ZoomVectorEnv`. No logging, no saving: the families' ``train`` wrap it.

The loop speaks the agent contract (:class:`~zoomrl.agents.base.OnlineAgent`): ``act(observations,
explore=True)``, ``observe(Transitions)``, ``learn()``. A family passes ``envs_for(indices) -> [env, ...]`` (its
environments for those images, training behaviour) and its exploration, an
:data:`~zoomrl.agents.dqn.agent.Explorer` ``(q, infos) -> actions`` that the loop installs as the agent's
behaviour policy for the pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from zoomrl.agents.base import Transitions
from zoomrl.envs.vector import VectorStep, ZoomVectorEnv, run_vector

if TYPE_CHECKING:
    from zoomrl.agents.dqn.agent import Explorer

EnvsFor = Callable[[Sequence[int]], list]


def store_transitions(agent: Any, demo: bool, tag: Any) -> Callable:
    """``on_step`` callback that hands each vector step to ``agent.observe`` as one :class:`Transitions`, keyed
    per image (so n-step returns never mix images run side by side), with the IoU of each state's window
    (``info["iou"]``, the IoU head's target) in ``extras``."""

    def on_step(
        indices: np.ndarray,
        obs: np.ndarray,
        actions: np.ndarray,
        step: VectorStep,
        next_obs: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        agent.observe(
            Transitions(
                keys=[(tag, int(i)) for i in indices],
                states=obs,
                actions=actions,
                rewards=step.rewards[indices],
                next_states=next_obs,
                terminated=step.terminated[indices],
                truncated=step.truncated[indices],
                demo=demo,
                extras={"iou": np.array([float(info["iou"]) for info in infos])},
            )
        )

    return on_step


def behaviour(agent: Any) -> tuple[Callable, Callable]:
    """``(q_fn, policy)`` for :func:`~zoomrl.envs.vector.run_vector` that act through ``agent.act(observations,
    explore=True, infos=...)``: ``q_fn`` hands the policy the observations themselves (training records no
    outputs)."""

    def policy(indices: np.ndarray, obs: np.ndarray | None, infos: list[dict[str, Any]]) -> np.ndarray:
        return agent.act(obs, explore=True, infos=infos)

    return (lambda obs: obs), policy


def collect_demonstrations(
    n_images: int,
    envs_for: EnvsFor,
    features: Any,
    agent: Any,
    batch: int,
    descriptor_scale: float,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Run the oracle (``info["oracle_action"]``) once over the images and store its transitions as
    demonstrations; returns how many steps it took."""
    steps = 0
    for start in range(0, n_images, batch):
        idx = list(range(start, min(start + batch, n_images)))
        vec = ZoomVectorEnv(envs_for(idx), features, descriptor_scale)
        steps += run_vector(
            vec,
            lambda ix, q, infos: np.array([i["oracle_action"] for i in infos], dtype=np.int64),
            None,
            store_transitions(agent, True, ("demo", start)),
        )
        if progress is not None:
            progress(len(idx))
    return steps


def dqn_pass(
    order: Sequence[int],
    envs_for: EnvsFor,
    explorer: Explorer,
    features: Any,
    agent: Any,
    batch: int,
    descriptor_scale: float,
    tag: Any,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, list[float], list]:
    """One pass over the images in ``order`` with ``explorer`` as the agent's behaviour policy: every step is
    acted by ``agent.act(explore=True)``, handed to ``agent.observe`` and followed by ``agent.learn()``.
    Returns ``(steps, losses, envs)``; the envs hold every search for the family's statistics."""
    losses: list[float] = []
    steps = 0
    done: list = []
    store_step = store_transitions(agent, False, tag)
    agent.explorer = explorer
    q_fn, policy = behaviour(agent)

    def on_step(*args: Any) -> None:
        store_step(*args)
        out = agent.learn()
        if out:
            losses.append(out["loss"])

    for start in range(0, len(order), batch):
        chunk = order[start : start + batch]
        envs = envs_for(chunk)
        vec = ZoomVectorEnv(envs, features, descriptor_scale, final_observations=True)
        steps += run_vector(vec, policy, q_fn, on_step, record_outputs=False)  # no record is read
        done.extend(envs)
        if progress is not None:
            progress(len(chunk))
    return steps, losses, done


def epoch_pass(
    epoch: int,
    n_images: int,
    envs_for: EnvsFor,
    explorer: Explorer,
    features: Any,
    agent: Any,
    config: Any,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, list[float], list]:
    """:func:`dqn_pass` over all images in 0-based ``epoch``'s shuffled order, seeded by ``(config.seed,
    epoch)`` so a resumed run repeats it."""
    order = np.random.default_rng([config.seed, epoch, 7]).permutation(n_images)
    return dqn_pass(
        order, envs_for, explorer, features, agent, config.episode_batch, config.descriptor_scale, epoch, progress
    )
