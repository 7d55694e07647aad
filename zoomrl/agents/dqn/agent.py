"""The DQN agent: acting (epsilon-greedy), learning (vectorised targets, one compiled update), saving.

Contract, after Dopamine: ``q_values`` and ``select_actions`` act, ``observe`` stores a transition, ``learn``
runs the due updates, ``save``/``restore`` write and read everything an exact resume needs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

import keras

from zoomrl.core.geometry import NUM_ACTIONS
from zoomrl.experiments.hierarchical.config import Config
from zoomrl.agents.dqn.network import build_qnetwork
from zoomrl.agents.dqn.replay import Batch, ReplayMemory


class DQNAgent:
    """One agent for one class. ``state_size`` = descriptor size + ``history_length * 6``."""

    def __init__(self, state_size: int, config: Config, seed: int = 0) -> None:
        self.config = config
        self.state_size = int(state_size)
        self.model = build_qnetwork(state_size, config.hidden_units, config.dropout, config.learning_rate)
        # Built now, so checkpoints always hold the same optimizer variables, updated or not.
        self.model.optimizer.build(self.model.trainable_variables)
        self.target_model: keras.Model | None = None
        if config.target_update_every > 0:
            self.target_model = build_qnetwork(state_size, config.hidden_units, config.dropout, config.learning_rate,
                                               name="target_q_network")
            self.target_model.set_weights(self.model.get_weights())
        self.memory = ReplayMemory(config.replay_size, state_size)
        self.rng = np.random.default_rng([seed, 1])
        self.transitions = 0  # stored in total
        self.updates = 0  # done in total

    # --- acting ---------------------------------------------------------------------------------------------
    def q_values(self, states: np.ndarray) -> np.ndarray:
        """Q-values ``(B, 6)`` of states ``(B, state_size)``, dropout off."""
        if len(states) == 0:
            return np.zeros((0, NUM_ACTIONS), dtype=np.float32)
        return np.asarray(keras.ops.convert_to_numpy(self.model.predict_on_batch(states.astype(np.float32))))

    @staticmethod
    def select_action(q: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
        """Epsilon-greedy over the six actions; the draw order is fixed so a given ``rng`` gives the same
        choices whatever else runs beside it."""
        explore = rng.random() < epsilon
        random_action = int(rng.integers(NUM_ACTIONS))
        return random_action if explore else int(np.argmax(q))

    # --- learning -------------------------------------------------------------------------------------------
    def observe(self, state: np.ndarray, action: int, reward: float, next_state: np.ndarray, terminal: bool) -> None:
        self.memory.add(state, action, reward, next_state, terminal)
        self.transitions += 1

    def targets(self, batch: Batch) -> np.ndarray:
        """``r + gamma * max_a' Q(s', a')`` for non-terminal transitions, ``r`` for terminal ones; vectorised."""
        source = self.target_model if self.target_model is not None else self.model
        next_q = np.asarray(keras.ops.convert_to_numpy(source.predict_on_batch(batch.next_states)))
        if self.target_model is not None and self.config.double_dqn:
            online = np.asarray(keras.ops.convert_to_numpy(self.model.predict_on_batch(batch.next_states)))
            best = next_q[np.arange(len(next_q)), online.argmax(axis=1)]
        else:
            best = next_q.max(axis=1)
        return batch.rewards + self.config.gamma * best * (~batch.terminal)

    def update(self, batch: Batch) -> float:
        """One gradient step on a minibatch; returns the loss."""
        y = np.stack([batch.actions.astype(np.float32), self.targets(batch).astype(np.float32)], axis=1)
        loss = self.model.train_on_batch(batch.states, y)
        self.updates += 1
        if self.target_model is not None and self.updates % self.config.target_update_every == 0:
            self.target_model.set_weights(self.model.get_weights())
        return float(np.asarray(loss).reshape(-1)[0])

    def learn(self) -> list[float]:
        """Run the updates due: one per ``train_every`` stored transitions once ``learning_starts`` are held."""
        losses: list[float] = []
        if len(self.memory) < max(self.config.learning_starts, 1):
            return losses
        due = self.transitions // self.config.train_every
        while self.updates < due:
            losses.append(self.update(self.memory.sample(self.config.minibatch, self.rng)))
        return losses

    # --- saving ---------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything but the network weights: optimizer slots, replay memory, counters and RNG state."""
        data: dict[str, Any] = dict(self.memory.state_dict())
        opt_vars = self.model.optimizer.variables
        data["optimizer_count"] = np.array(len(opt_vars))
        for i, v in enumerate(opt_vars):
            data[f"optimizer_{i}"] = np.asarray(keras.ops.convert_to_numpy(v))
        if self.target_model is not None:
            for i, w in enumerate(self.target_model.get_weights()):
                data[f"target_{i}"] = w
        for i, gen in enumerate(self._seed_generators()):
            data[f"seed_state_{i}"] = np.asarray(keras.ops.convert_to_numpy(gen.state))
        data["rng_state"] = np.array(json.dumps(self.rng.bit_generator.state))
        data["transitions"] = np.array(self.transitions)
        data["updates"] = np.array(self.updates)
        return data

    def load_state_dict(self, data: dict[str, Any]) -> None:
        self.memory.load_state_dict(data)
        opt_vars = self.model.optimizer.variables
        if int(data["optimizer_count"]) != len(opt_vars):
            raise ValueError(
                f"checkpoint holds {int(data['optimizer_count'])} optimizer variables, this agent has {len(opt_vars)}"
            )
        for i, v in enumerate(opt_vars):
            v.assign(data[f"optimizer_{i}"])
        if self.target_model is not None:
            n = len(self.target_model.get_weights())
            self.target_model.set_weights([data[f"target_{i}"] for i in range(n)])
        for i, gen in enumerate(self._seed_generators()):
            gen.state.assign(data[f"seed_state_{i}"])
        self.rng.bit_generator.state = json.loads(str(data["rng_state"]))
        self.transitions = int(data["transitions"])
        self.updates = int(data["updates"])

    def _seed_generators(self) -> list[Any]:
        """Dropout's random state lives outside the weights; saving it makes a resume exact."""
        return [layer.seed_generator for layer in self.model.layers if hasattr(layer, "seed_generator")]

    def save_weights(self, path: Path) -> None:
        from zoomrl.core.io import atomic_path

        with atomic_path(path, suffix=".weights.h5") as tmp:
            self.model.save_weights(str(tmp))

    def load_weights(self, path: Path) -> None:
        """Load Q-network weights (and the optimizer slots saved beside them)."""
        self.model.load_weights(str(path))


__all__ = ["DQNAgent"]
