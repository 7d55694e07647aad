"""Uniform experience replay in preallocated NumPy arrays (a ring buffer). No Keras."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Batch(NamedTuple):
    """A minibatch: states ``(B, S)``, actions ``(B,)``, rewards ``(B,)``, next states ``(B, S)``, and
    ``terminal`` ``(B,)``: true where the episode really ended (trigger), so the target does not bootstrap.
    A search cut by the step limit is not terminal: it bootstraps from the last window's value."""

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_states: np.ndarray
    terminal: np.ndarray


class ReplayMemory:
    """Holds the last ``capacity`` transitions; the oldest is overwritten first."""

    def __init__(self, capacity: int, state_size: int) -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity must be positive, received {capacity}")
        self.capacity = int(capacity)
        self.state_size = int(state_size)
        self.states = np.zeros((capacity, state_size), dtype=np.float32)
        self.next_states = np.zeros((capacity, state_size), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminal = np.zeros(capacity, dtype=bool)
        self.position = 0  # where the next transition goes
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, state: np.ndarray, action: int, reward: float, next_state: np.ndarray, terminal: bool) -> None:
        i = self.position
        self.states[i] = state
        self.actions[i] = action
        self.rewards[i] = reward
        self.next_states[i] = next_state
        self.terminal[i] = terminal
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """``batch_size`` transitions drawn uniformly with replacement from those held."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay memory")
        idx = rng.integers(0, self.size, size=batch_size)
        return Batch(self.states[idx], self.actions[idx], self.rewards[idx], self.next_states[idx], self.terminal[idx])

    def state_dict(self) -> dict[str, np.ndarray]:
        """Arrays to save (only the filled part), for an exact resume."""
        n = self.size
        return {
            "replay_states": self.states[:n],
            "replay_next_states": self.next_states[:n],
            "replay_actions": self.actions[:n],
            "replay_rewards": self.rewards[:n],
            "replay_terminal": self.terminal[:n],
            "replay_position": np.array(self.position),
            "replay_capacity": np.array(self.capacity),
        }

    def load_state_dict(self, data: dict[str, np.ndarray]) -> None:
        capacity = int(data["replay_capacity"])
        n = len(data["replay_actions"])
        if capacity != self.capacity or data["replay_states"].shape[1:] != (self.state_size,):
            raise ValueError(
                f"replay memory in checkpoint has capacity {capacity} and state size "
                f"{data['replay_states'].shape[1:]}, expected {self.capacity} and ({self.state_size},)"
            )
        self.states[:n] = data["replay_states"]
        self.next_states[:n] = data["replay_next_states"]
        self.actions[:n] = data["replay_actions"]
        self.rewards[:n] = data["replay_rewards"]
        self.terminal[:n] = data["replay_terminal"]
        self.size = n
        self.position = int(data["replay_position"])
