"""The DQN agent: acting, storing (n-step, demonstrations), learning (one compiled update), saving.

It follows :class:`zoomrl.agents.base.OnlineAgent`: ``act``, ``observe(Transitions)``, ``learn()``. Beyond the
protocol it offers what is not acting or learning (``q_values`` and ``q_values_and_iou``, which testing records
for the detection scores and pictures) and the behaviour-cloning warm-up (:meth:`DQNAgent.pretrain`, called once
by the shared DQN trainee before the first epoch: a fixed number of updates on demonstrations alone, which no
other family has, so it stays a DQN call rather than a mode of ``learn``).

The update is a Keras ``train_on_batch`` of a small learner model
whose ``compute_loss`` calls :func:`zoomrl.agents.dqn.losses.dqn_loss`, so TensorFlow, JAX and PyTorch all
differentiate it and the loss stays a plain function.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from zoomrl.agents.base import OnlineAgent, Transitions, optimizer_state, set_optimizer_state
from zoomrl.agents.dqn.config import DQNConfig
from zoomrl.agents.dqn.losses import dqn_loss, iou_loss, td_targets
from zoomrl.agents.dqn.network import build_qnetwork
from zoomrl.agents.dqn.replay import Batch, NStepAccumulator, ReplayMemory, concat_batches

Explorer = Callable[[np.ndarray, list[Mapping[str, Any]]], np.ndarray]
"""``explorer(q_values (B, A), infos) -> actions (B,)``: a family's exploration (epsilon-greedy with per-image
random streams, guided exploration, the forced trigger), which needs the environments' hints in ``infos``."""


def one_step(
    key: Hashable,
    state: np.ndarray,
    action: int,
    reward: float,
    next_state: np.ndarray | None,
    terminated: bool,
    truncated: bool,
    demo: bool = False,
    iou: float = 0.0,
) -> Transitions:
    """A :class:`Transitions` of one row (a single environment's step; ``next_state`` may be None when
    ``terminated``)."""
    return Transitions(
        keys=[key],
        states=np.asarray(state)[None],
        actions=np.array([action]),
        rewards=np.array([reward], dtype=np.float64),
        # A terminal step's next state is never read (the memory stores zeros for it).
        next_states=np.asarray(state if next_state is None else next_state)[None],
        terminated=np.array([terminated]),
        truncated=np.array([truncated]),
        demo=demo,
        extras={"iou": np.array([iou])},
    )


class _Learner(keras.Model):
    """Wraps the Q-network for training: ``call`` gives its outputs (Q-values, and the predicted IoU when the
    network has the IoU head), ``compute_loss`` the DQN loss of a batch passed as the input dict (states,
    actions, targets, is_demo, ious) plus ``iou_weight`` times the IoU head's squared error."""

    def __init__(self, network: keras.Model, margin: float, margin_weight: float, iou_weight: float = 0.0) -> None:
        super().__init__(name="dqn_learner")
        self.network = network
        self.margin = float(margin)
        self.margin_weight = float(margin_weight)
        self.iou_weight = float(iou_weight)

    def call(self, inputs, training=False):
        return self.network(inputs["states"], training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not self.iou_weight:
            loss = dqn_loss(y_pred, x, self.margin, self.margin_weight)
        else:
            q, predicted_iou = y_pred
            loss = dqn_loss(q, x, self.margin, self.margin_weight) + self.iou_weight * keras.ops.mean(
                iou_loss(predicted_iou, x["ious"])
            )
        # The kernels' L2 penalties (weight_decay): Keras's own compute_loss adds them, this override must too.
        penalties = self.losses
        return loss + keras.ops.sum(keras.ops.stack(penalties)) if penalties else loss


class DQNAgent(OnlineAgent):
    """One agent with ``state_size`` inputs and ``num_actions`` outputs (see :class:`DQNConfig` for options)."""

    def __init__(
        self,
        state_size: int,
        num_actions: int,
        config: DQNConfig,
        seed: int = 0,
        build_network: Callable[..., keras.Model] | None = None,
    ) -> None:
        """``build_network(state_size, num_actions, hidden_units, dropout, dueling, name=...)`` replaces the MLP
        of :func:`build_qnetwork` (for example a CNN over raw pixels trained end to end).

        ``network`` is the whole trained model (saved and loaded); ``model`` its Q-values alone (the same
        layers), which acting and the target network use."""
        self.config = config
        self.state_size = int(state_size)
        self.num_actions = int(num_actions)
        c = config
        build = build_network or build_qnetwork
        self.iou_model: keras.Model | None = None
        if c.weight_decay > 0 and build_network is not None:
            raise ValueError(
                "weight_decay > 0 needs the default Q-network (build_qnetwork); received a custom build_network"
            )
        if c.iou_weight > 0:
            if build_network is not None:
                raise ValueError(
                    "iou_weight > 0 needs the default Q-network (build_qnetwork); received a custom build_network"
                )
            self.network = build_qnetwork(
                state_size,
                num_actions,
                c.hidden_units,
                c.dropout,
                c.dueling,
                name="q_network",
                iou_head=True,
                weight_decay=c.weight_decay,
            )
            self.model = keras.Model(self.network.input, self.network.outputs[0], name="q_values_only")
            self.iou_model = keras.Model(self.network.input, self.network.outputs[1], name="iou_only")
        elif c.weight_decay > 0:
            self.network = self.model = build_qnetwork(
                state_size,
                num_actions,
                c.hidden_units,
                c.dropout,
                c.dueling,
                name="q_network",
                weight_decay=c.weight_decay,
            )
        else:
            self.network = self.model = build(
                state_size, num_actions, c.hidden_units, c.dropout, c.dueling, name="q_network"
            )
        self.learner = _Learner(self.network, c.margin, c.margin_weight if c.demo_ratio > 0 else 0.0, c.iou_weight)
        # XLA makes an update of the 25112 x 1024 network about 2.8x faster on a CPU under TensorFlow; JAX
        # compiles anyway. PyTorch keeps Keras's default (torch.compile does not pay off for one small step).
        # Below a million weights XLA's compile time costs more than it saves (tests, tiny presets).
        big = self.network.count_params() >= 1_000_000
        jit = True if big and keras.backend.backend() in ("tensorflow", "jax") else "auto"
        self.learner.compile(optimizer=keras.optimizers.Adam(learning_rate=c.learning_rate), jit_compile=jit)
        # Built now, so every checkpoint holds the same optimizer variables, updated or not.
        self.learner.optimizer.build(self.network.trainable_variables)
        self.target_model: keras.Model | None = None
        if c.target_update_every > 0:
            self.target_model = build(
                state_size, num_actions, c.hidden_units, c.dropout, c.dueling, name="target_q_network"
            )
            self.target_model.set_weights(self.model.get_weights())
        self.memory = ReplayMemory(c.replay_size, state_size)
        self.demos = ReplayMemory(c.demo_size, state_size, demo=True) if c.demo_ratio > 0 else None
        self._nstep = NStepAccumulator(c.n_step, c.gamma)
        self._demo_nstep = NStepAccumulator(c.n_step, c.gamma)
        self.rng = np.random.default_rng([seed, 1])
        self.transitions = 0  # environment steps stored in total (the agent's own, not demonstrations)
        self.updates = 0  # updates done in total
        self.explorer: Explorer | None = None
        """The behaviour policy of ``act(explore=True)``, set by the run loop for each pass (its epsilon and
        per-image random streams are the epoch's)."""

    # --- acting ---------------------------------------------------------------------------------------------
    def q_values(self, states: np.ndarray) -> np.ndarray:
        """Q-values ``(B, num_actions)`` of states ``(B, state_size)``, dropout off."""
        if len(states) == 0:
            return np.zeros((0, self.num_actions), dtype=np.float32)
        return np.asarray(keras.ops.convert_to_numpy(self.model.predict_on_batch(states.astype(np.float32))))

    def predict_iou(self, states: np.ndarray) -> np.ndarray:
        """The IoU head's prediction ``(B,)`` for states ``(B, state_size)``, dropout off (needs ``iou_weight > 0``)."""
        if self.iou_model is None:
            raise ValueError("this agent has no IoU head (iou_weight is 0)")
        if len(states) == 0:
            return np.zeros(0, dtype=np.float32)
        out = self.iou_model.predict_on_batch(states.astype(np.float32))
        return np.asarray(keras.ops.convert_to_numpy(out)).reshape(-1)

    def q_values_and_iou(self, states: np.ndarray) -> np.ndarray:
        """Q-values and the predicted IoU in one network call: ``(B, num_actions + 1)``, the IoU last (needs
        ``iou_weight > 0``)."""
        if self.iou_model is None:
            raise ValueError("this agent has no IoU head (iou_weight is 0)")
        if len(states) == 0:
            return np.zeros((0, self.num_actions + 1), dtype=np.float32)
        q, iou = self.network.predict_on_batch(states.astype(np.float32))
        return np.concatenate(
            [np.asarray(keras.ops.convert_to_numpy(q)), np.asarray(keras.ops.convert_to_numpy(iou)).reshape(-1, 1)],
            axis=1,
        )

    def act(
        self, observations: np.ndarray, explore: bool = False, infos: Sequence[Mapping[str, Any]] | None = None
    ) -> np.ndarray:
        """Greedy actions (ties to the lowest index); with ``explore``, the behaviour policy: :attr:`explorer`
        applied to the Q-values and ``infos`` (the environments' hints for each row: which image it is, for
        the per-image random streams, and the oracle's hints of guided exploration or the forced trigger)."""
        q = self.q_values(observations)
        if not explore:
            return np.argmax(q, axis=1)
        if self.explorer is None:
            raise ValueError("acting with explore=True needs an explorer (set agent.explorer, see Explorer)")
        return np.asarray(self.explorer(q, list(infos) if infos is not None else [{}] * len(q)), dtype=np.int64)

    # --- storing --------------------------------------------------------------------------------------------
    def observe(self, transitions: Transitions) -> None:
        """Store one vector step: row ``j`` is a step of episode ``transitions.keys[j]`` (n-step returns are
        completed per key); ``demo`` steps (oracle demonstrations) go to their own memory and do not count as
        the agent's steps. ``extras["iou"]`` is the IoU of each state's window with its target (what the IoU
        head learns to predict; 0 when absent)."""
        t = transitions
        acc, memory = (self._demo_nstep, self.demos) if t.demo else (self._nstep, self.memory)
        if memory is None:
            raise ValueError("demonstrations need demo_ratio > 0")
        ious = (t.extras or {}).get("iou")
        for j, key in enumerate(t.keys):
            iou = 0.0 if ious is None else float(ious[j])
            step = (t.states[j], int(t.actions[j]), float(t.rewards[j]), t.next_states[j])
            for transition in acc.add(key, *step, bool(t.terminated[j]), bool(t.truncated[j]), iou):
                memory.add(*transition)
            if not t.demo:
                self.transitions += 1

    # --- learning -------------------------------------------------------------------------------------------
    def sample(self, size: int, demo_only: bool = False) -> Batch:
        """A minibatch: ``demo_ratio`` of it from the demonstrations (all of it with ``demo_only`` or while the
        agent's memory is empty), the rest from the agent's memory."""
        if self.demos is None or len(self.demos) == 0:
            return self.memory.sample(size, self.rng)
        n_demo = size if demo_only or len(self.memory) == 0 else int(round(size * self.config.demo_ratio))
        if n_demo >= size:
            return self.demos.sample(size, self.rng)
        if n_demo == 0:
            return self.memory.sample(size, self.rng)
        return concat_batches(self.demos.sample(n_demo, self.rng), self.memory.sample(size - n_demo, self.rng))

    def targets(self, batch: Batch) -> np.ndarray:
        """TD targets of ``batch`` (:func:`td_targets`): the target network when there is one (else the online
        network), Double DQN's action choice when configured."""
        source = self.target_model if self.target_model is not None else self.model
        next_q = np.asarray(keras.ops.convert_to_numpy(source.predict_on_batch(batch.next_states)))
        online = None
        if self.target_model is not None and self.config.double_dqn:
            online = np.asarray(keras.ops.convert_to_numpy(self.model.predict_on_batch(batch.next_states)))
        return td_targets(batch.returns, batch.discounts, next_q, online)

    def update(self, batch: Batch) -> float:
        """One gradient step on a minibatch; returns the loss (a non-finite loss stops the run)."""
        x = {
            "states": batch.states.astype(np.float32),
            "actions": batch.actions.astype(np.int32),
            "targets": self.targets(batch),
            "is_demo": batch.is_demo.astype(np.float32),
            "ious": batch.ious.astype(np.float32),
        }
        loss = float(np.asarray(self.learner.train_on_batch(x, None, return_dict=False)).reshape(-1)[0])
        self.updates += 1
        if not np.isfinite(loss):
            raise FloatingPointError(f"non-finite DQN loss ({loss}) at update {self.updates}")
        if self.target_model is not None and self.updates % self.config.target_update_every == 0:
            self.target_model.set_weights(self.model.get_weights())
        return loss

    def learn(self) -> dict[str, float]:
        """Run the updates due: one per ``train_every`` stored steps once ``learning_starts`` are held."""
        losses: list[float] = []
        if len(self.memory) < max(self.config.learning_starts, 1):
            return {}
        due = self.transitions // self.config.train_every
        while self.updates < due + self._pretrain_updates:
            losses.append(self.update(self.sample(self.config.minibatch)))
        return {"loss": float(np.mean(losses))} if losses else {}

    _pretrain_updates = 0

    def pretrain(self, n_updates: int) -> list[float]:
        """Behaviour-cloning warm-up: ``n_updates`` updates on demonstrations alone (TD plus large margin)."""
        if self.demos is None or len(self.demos) == 0:
            raise ValueError("the behaviour-cloning warm-up needs demonstrations (demo_ratio > 0)")
        size = self.config.bc_minibatch or self.config.minibatch
        losses = [self.update(self.sample(size, demo_only=True)) for _ in range(n_updates)]
        self._pretrain_updates += n_updates
        return losses

    # --- saving ---------------------------------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        """Everything but the online weights: optimizer slots, target network, replay memories (compact),
        counters and random states."""
        data: dict[str, Any] = dict(self.memory.state_dict("replay_"))
        if self.demos is not None:
            data.update(self.demos.state_dict("demo_"))
        data.update(optimizer_state(self.learner.optimizer))
        if self.target_model is not None:
            for i, w in enumerate(self.target_model.get_weights()):
                data[f"target_{i}"] = w
        for i, gen in enumerate(self._seed_generators()):
            data[f"seed_state_{i}"] = np.asarray(keras.ops.convert_to_numpy(gen.state))
        data["rng_state"] = np.array(json.dumps(self.rng.bit_generator.state))
        data["transitions"] = np.array(self.transitions)
        data["updates"] = np.array(self.updates)
        data["pretrain_updates"] = np.array(self._pretrain_updates)
        return data

    def set_state(self, data: Mapping[str, np.ndarray]) -> None:
        self.memory.load_state_dict(dict(data), "replay_")
        if self.demos is not None:
            if "demo_capacity" not in data:
                raise ValueError("checkpoint holds no demonstrations, this run uses them")
            self.demos.load_state_dict(dict(data), "demo_")
        set_optimizer_state(self.learner.optimizer, data)
        if self.target_model is not None:
            n = len(self.target_model.get_weights())
            if f"target_{n - 1}" not in data:
                raise ValueError("checkpoint holds no target network, this run has one")
            self.target_model.set_weights([data[f"target_{i}"] for i in range(n)])
        for i, gen in enumerate(self._seed_generators()):
            gen.state.assign(data[f"seed_state_{i}"])
        self.rng.bit_generator.state = json.loads(str(data["rng_state"]))
        self.transitions = int(data["transitions"])
        self.updates = int(data["updates"])
        self._pretrain_updates = int(data.get("pretrain_updates", 0))

    def _seed_generators(self) -> list[Any]:
        """Dropout's random state lives outside the weights; saving it makes a resume exact."""
        return [layer.seed_generator for layer in self.network.layers if hasattr(layer, "seed_generator")]

    def save_weights(self, path: str | Path) -> None:
        """The Q-network alone, with its IoU head if any (no optimizer: it is saved once, in the training
        state)."""
        self.network.save_weights(str(path))

    def load_weights(self, path: str | Path) -> None:
        self.network.load_weights(str(path))


def epsilon_greedy(q: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
    """Epsilon-greedy over ``len(q)`` actions; the draw order is fixed (one uniform, one integer), so a given
    ``rng`` makes the same choices whatever else runs beside it."""
    explore = rng.random() < epsilon
    random_action = int(rng.integers(len(q)))
    return random_action if explore else int(np.argmax(q))


def agent_outputs(agent: DQNAgent) -> Callable[[np.ndarray], np.ndarray]:
    """What testing logs per step: the agent's Q-values, then its predicted IoU of the window as one more column
    when it has the IoU head (the env logs it as ``predicted_iou``, the ``predicted_iou`` detection score)."""
    return agent.q_values if agent.iou_model is None else agent.q_values_and_iou


def per_image_explorer(
    choose: Callable[[np.ndarray, Mapping[str, Any], np.random.Generator], int],
    prefix: Sequence[int],
    suffix: Sequence[int] = (),
) -> Explorer:
    """An :data:`Explorer` whose ``choose(q, info, rng)`` picks each image's action, ``rng`` that image's own
    generator, seeded by ``[*prefix, info["image_index"], *suffix]``: an image's choices do not depend on which
    images run beside it in the batch."""
    rngs: dict[int, np.random.Generator] = {}

    def policy(q: np.ndarray, infos: list[Mapping[str, Any]]) -> np.ndarray:
        out = np.empty(len(q), dtype=np.int64)
        for j, info in enumerate(infos):
            k = int(info["image_index"])
            out[j] = choose(q[j], info, rngs.setdefault(k, np.random.default_rng([*prefix, k, *suffix])))
        return out

    return policy


__all__ = ["DQNAgent", "Explorer", "agent_outputs", "epsilon_greedy", "one_step", "per_image_explorer"]
