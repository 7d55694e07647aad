"""Experience replay in preallocated NumPy arrays (a ring buffer), the n-step accumulator, and compact saving.
No Keras.

A stored transition is ``(s, a, R, s', discount, iou)``: ``R`` the discounted sum of up to ``n`` rewards, ``s'``
the state ``n`` steps later and ``discount`` = ``gamma**n``, or 0 when the episode terminated inside those steps
(then ``s'`` is not used). With ``n = 1`` this is the paper's one-step transition. ``iou`` is the IoU of the window
of ``s`` with its target, the regression target of the optional IoU head (``DQNConfig.iou_weight``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from typing import NamedTuple

import numpy as np


class Batch(NamedTuple):
    """A minibatch: states ``(B, S)``, actions ``(B,)``, returns ``(B,)``, next states ``(B, S)``, discounts
    ``(B,)`` (0 where the episode terminated: no bootstrap; a search cut by the step limit is not terminal),
    ``is_demo`` ``(B,)`` (1 for oracle demonstrations) and ``ious`` ``(B,)`` (IoU of each state's window)."""

    states: np.ndarray
    actions: np.ndarray
    returns: np.ndarray
    next_states: np.ndarray
    discounts: np.ndarray
    is_demo: np.ndarray
    ious: np.ndarray


def concat_batches(a: Batch, b: Batch) -> Batch:
    return Batch(*(np.concatenate([x, y]) for x, y in zip(a, b)))


class ReplayMemory:
    """Holds the last ``capacity`` transitions; the oldest is overwritten first. ``demo`` marks a memory of
    demonstrations (its samples carry ``is_demo = 1``)."""

    def __init__(self, capacity: int, state_size: int, demo: bool = False) -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity must be positive, received {capacity}")
        self.capacity = int(capacity)
        self.state_size = int(state_size)
        self.demo = demo
        self.states = np.zeros((capacity, state_size), dtype=np.float32)
        self.next_states = np.zeros((capacity, state_size), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.returns = np.zeros(capacity, dtype=np.float32)
        self.discounts = np.zeros(capacity, dtype=np.float32)
        self.ious = np.zeros(capacity, dtype=np.float32)
        self.position = 0  # where the next transition goes
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        state: np.ndarray,
        action: int,
        ret: float,
        next_state: np.ndarray | None,
        discount: float,
        iou: float = 0.0,
    ) -> None:
        i = self.position
        self.states[i] = state
        self.actions[i] = action
        self.returns[i] = ret
        # A terminal transition never reads s': store zeros, which also keeps saved memories small.
        self.next_states[i] = 0.0 if next_state is None or discount == 0.0 else next_state
        self.discounts[i] = discount
        self.ious[i] = iou
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """``batch_size`` transitions drawn uniformly with replacement from those held."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay memory")
        idx = rng.integers(0, self.size, size=batch_size)
        return Batch(
            self.states[idx],
            self.actions[idx],
            self.returns[idx],
            self.next_states[idx],
            self.discounts[idx],
            np.full(batch_size, float(self.demo), dtype=np.float32),
            self.ious[idx],
        )

    # --- saving -------------------------------------------------------------------------------------------
    def state_dict(self, prefix: str = "replay_") -> dict[str, np.ndarray]:
        """Arrays to save, compactly: each distinct state row once (a next state is usually the following
        transition's state, and terminal next states are zeros), plus two index arrays into those rows."""
        n = self.size
        rows, index = unique_rows(np.concatenate([self.states[:n], self.next_states[:n]]))
        return {
            f"{prefix}rows": rows,
            f"{prefix}state_index": index[:n].astype(np.int32),
            f"{prefix}next_index": index[n:].astype(np.int32),
            f"{prefix}actions": self.actions[:n],
            f"{prefix}returns": self.returns[:n],
            f"{prefix}discounts": self.discounts[:n],
            f"{prefix}ious": self.ious[:n],
            f"{prefix}position": np.array(self.position),
            f"{prefix}capacity": np.array(self.capacity),
            f"{prefix}state_size": np.array(self.state_size),
        }

    def load_state_dict(self, data: dict[str, np.ndarray], prefix: str = "replay_") -> None:
        capacity = int(data[f"{prefix}capacity"])
        state_size = int(data[f"{prefix}state_size"])
        if capacity != self.capacity or state_size != self.state_size:
            raise ValueError(
                f"replay memory in checkpoint has capacity {capacity} and state size {state_size}, "
                f"this run expects {self.capacity} and {self.state_size}"
            )
        rows = data[f"{prefix}rows"]
        n = len(data[f"{prefix}actions"])
        self.states[:n] = rows[data[f"{prefix}state_index"]]
        self.next_states[:n] = rows[data[f"{prefix}next_index"]]
        self.actions[:n] = data[f"{prefix}actions"]
        self.returns[:n] = data[f"{prefix}returns"]
        self.discounts[:n] = data[f"{prefix}discounts"]
        # Checkpoints written before the IoU head hold no IoUs: zeros (only read when the head is trained).
        self.ious[:n] = data[f"{prefix}ious"] if f"{prefix}ious" in data else 0.0
        self.size = n
        self.position = int(data[f"{prefix}position"])


def unique_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``matrix`` (in order of first appearance) and, per row, the index of its copy."""
    if len(matrix) == 0:
        return matrix[:0], np.zeros(0, dtype=np.int64)
    keys: dict[bytes, int] = {}
    index = np.empty(len(matrix), dtype=np.int64)
    first: list[int] = []
    for i, row in enumerate(matrix):
        k = row.tobytes()
        j = keys.get(k)
        if j is None:
            j = keys[k] = len(first)
            first.append(i)
        index[i] = j
    return matrix[first], index


class NStepAccumulator:
    """Turns each episode's one-step transitions into n-step ones, per episode ``key`` (so the searches of images
    run in lockstep never mix). Emits ``(s, a, R, s', discount, iou)`` tuples for :meth:`ReplayMemory.add`, where
    ``iou`` is the one given with ``s``."""

    def __init__(self, n: int, gamma: float) -> None:
        if n < 1:
            raise ValueError(f"n_step must be a positive integer, received {n}")
        self.n = int(n)
        self.gamma = float(gamma)
        self._pending: dict[Hashable, list[tuple[np.ndarray, int, float, float]]] = defaultdict(list)

    def add(
        self,
        key: Hashable,
        state: np.ndarray,
        action: int,
        reward: float,
        next_state: np.ndarray | None,
        terminated: bool,
        truncated: bool,
        iou: float = 0.0,
    ) -> list[tuple[np.ndarray, int, float, np.ndarray | None, float, float]]:
        pending = self._pending[key]
        pending.append((state, int(action), float(reward), float(iou)))
        out = []
        if terminated or truncated:
            # Flush: every pending step gets the rest of the episode's rewards; a cut search bootstraps from s'.
            while pending:
                out.append(self._emit(pending, next_state, terminated))
                pending.pop(0)
            del self._pending[key]
        elif len(pending) == self.n:
            out.append(self._emit(pending, next_state, False))
            pending.pop(0)
        return out

    def _emit(self, pending, next_state, terminated):
        ret = sum(self.gamma**k * r for k, (_, _, r, _) in enumerate(pending))
        discount = 0.0 if terminated else self.gamma ** len(pending)
        s, a, _, iou = pending[0]
        return s, a, float(ret), next_state, discount, iou

    def __len__(self) -> int:
        return sum(len(v) for v in self._pending.values())
