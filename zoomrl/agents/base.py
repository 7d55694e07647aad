"""The contract every agent family shares (after DQN Zoo's ``parts.Agent``).

An agent acts on a batch of observations, is told what happened, learns, and can be saved and restored exactly.
The run loops in ``zoomrl/experiments/`` only use these methods, so they know nothing of Q-learning or policy
gradients; logging and saving stay outside the agent.

* :meth:`Agent.act`: actions for a batch of observations (``explore`` selects the behaviour policy);
* :meth:`Agent.observe`: one step's outcome (value-based agents store it; others may ignore it);
* :meth:`Agent.learn`: run the updates that are due, return named losses;
* :meth:`Agent.get_state` / :meth:`Agent.set_state`: everything but the network weights that an exact resume
  needs (optimizer slots, replay, counters, random states), as a flat dict of NumPy arrays;
* :meth:`Agent.save_weights` / :meth:`Agent.load_weights`: the networks alone (what testing loads).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


class Agent(abc.ABC):
    """Base class of every agent (see the module docstring)."""

    @abc.abstractmethod
    def act(self, observations: Any, explore: bool = False) -> np.ndarray:
        """Actions for a batch of observations."""

    def observe(self, *args: Any, **kwargs: Any) -> None:  # noqa: B027 - a deliberate no-op default, not abstract
        """Record one step's outcome; agents that learn from whole batches need not."""

    @abc.abstractmethod
    def learn(self, *args: Any, **kwargs: Any) -> dict[str, float]:
        """Run the updates that are due; returns named losses (empty when none was due)."""

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
