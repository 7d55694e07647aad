"""The contract every agent family shares (after DQN Zoo's ``parts.Agent``), in two small protocols.

An agent acts on a batch of observations, learns, and can be saved and restored exactly. The run loops only use
these methods, so they know nothing of Q-learning or policy gradients; logging and saving stay outside the agent.

* :class:`OnlineAgent` (value-based, learns while it acts: the hierarchical and active families): the loop calls
  :meth:`Agent.act`, hands every step to :meth:`OnlineAgent.observe` as a typed :class:`Transitions` batch, then
  :meth:`OnlineAgent.learn`, which runs the updates that are due from the agent's own memory;
* :class:`BatchAgent` (learns from labelled minibatches the loop draws: RAM, PatchDrop): the loop calls
  :meth:`BatchAgent.learn` with a :class:`LabelledBatch`; :meth:`Agent.act` is what testing runs.

Both share :meth:`Agent.get_state` / :meth:`Agent.set_state` (everything but the weights that an exact resume
needs: optimizer slots, replay, counters, random states, as a flat dict of NumPy arrays) and
:meth:`Agent.save_weights` / :meth:`Agent.load_weights` (the networks alone: what testing loads).
"""

from __future__ import annotations

import abc
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np


class Transitions(NamedTuple):
    """One vector step: row ``j`` is environment ``keys[j]``'s transition (n-step returns are completed per key,
    so that episodes run side by side never mix)."""

    keys: Sequence[Hashable]
    states: np.ndarray
    actions: np.ndarray
    """``(B,)`` integer actions."""
    rewards: np.ndarray
    next_states: np.ndarray
    terminated: np.ndarray
    """``(B,)`` bool: the episode ended (no bootstrap)."""
    truncated: np.ndarray
    """``(B,)`` bool: the episode was cut (bootstrap from ``next_states``)."""
    demo: bool = False
    """Oracle demonstrations (kept apart from the agent's own steps)."""
    extras: Mapping[str, np.ndarray] | None = None
    """Per-row auxiliary targets (for example ``iou``, the IoU of each state's window)."""


class LabelledBatch(NamedTuple):
    """A minibatch for a :class:`BatchAgent`: inputs and their targets (class labels, or locations)."""

    inputs: np.ndarray
    targets: np.ndarray


class Agent(abc.ABC):
    """What every agent offers (see the module docstring)."""

    @abc.abstractmethod
    def act(self, observations: Any, explore: bool = False) -> np.ndarray:
        """Actions for a batch of observations (``explore``: the behaviour policy, else the greedy one)."""

    @abc.abstractmethod
    def get_state(self) -> dict[str, np.ndarray]:
        """Everything but the weights that an exact resume needs, as NumPy arrays."""

    @abc.abstractmethod
    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what :meth:`get_state` returned."""

    @abc.abstractmethod
    def save_weights(self, path: str | Path) -> None:
        """Write the networks (no optimizer state) to ``path``."""

    @abc.abstractmethod
    def load_weights(self, path: str | Path) -> None:
        """Read what :meth:`save_weights` wrote; a file that does not fit raises a one-line error naming it."""


class OnlineAgent(Agent):
    """An agent that learns from what it observes while acting (DQN)."""

    @abc.abstractmethod
    def observe(self, transitions: Transitions) -> None:
        """Store one vector step's transitions."""

    @abc.abstractmethod
    def learn(self) -> dict[str, float]:
        """Run the updates that are due; returns named losses (empty when none was due)."""


class BatchAgent(Agent):
    """An agent that learns from labelled minibatches the loop draws (RAM, PatchDrop)."""

    @abc.abstractmethod
    def learn(self, batch: LabelledBatch) -> dict[str, float]:
        """One update on ``batch``; returns named losses and metrics."""

    def begin_epoch(self, seed: int) -> None:
        """Called by the loop before an epoch's first :meth:`learn`: the agent's own random draws restart from
        ``seed``, so that an epoch depends only on the state at its start and ``seed`` (an exact resume). Nothing
        by default."""


def optimizer_state(optimizer: Any) -> dict[str, np.ndarray]:
    """A Keras optimizer's variables (iterations, slots) as NumPy arrays, for :meth:`Agent.get_state`."""
    import keras

    out = {"optimizer_count": np.array(len(optimizer.variables))}
    for i, v in enumerate(optimizer.variables):
        out[f"optimizer_{i}"] = np.asarray(keras.ops.convert_to_numpy(v))
    return out


def set_optimizer_state(optimizer: Any, state: Mapping[str, np.ndarray], prefix: str = "") -> None:
    """Restore :func:`optimizer_state` (the optimizer must be built); a mismatch names both counts."""
    n = int(state[prefix + "optimizer_count"])
    if n != len(optimizer.variables):
        raise ValueError(f"checkpoint holds {n} optimizer variables, this agent has {len(optimizer.variables)}")
    for i, v in enumerate(optimizer.variables):
        v.assign(state[f"{prefix}optimizer_{i}"])
