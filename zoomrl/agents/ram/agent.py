"""RAM and the whole-image baselines behind the :class:`zoomrl.agents.base.Agent` contract.

Both are :class:`~zoomrl.agents.base.BatchAgent` s: ``learn(LabelledBatch(images, targets))`` runs one
``train_on_batch`` (``run_eagerly``: no graph compilation, for tiny models); ``begin_epoch(seed)`` reseeds RAM's
sampled glimpses;
``predict`` gives outputs (class probabilities, or locations in [-1, 1] units); ``get_state`` / ``set_state`` carry
the optimizer slots and the random-generator state (an exact resume), ``save_weights`` / ``load_weights`` the
networks alone.

Test modes of :meth:`RamAgent.predict`:

* ``"mean"``: the deterministic mean path: the first location is the model's own when it has a fixed start
  (``first_location`` ``"centre"``, or the learned mean), otherwise it must be given (the run loop then draws it
  from a seeded NumPy generator: one random draw per image); every later location is the location network's mean;
* ``"sample"``: Monte-Carlo: ``samples`` full stochastic paths per image (the model's first location: uniform,
  the centre, or sampled around the learned mean; then Gaussian around the means), outputs averaged (class
  probabilities, or predicted locations).

Paths are reported where the sensor read them, clipped to [-1, 1].
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoomrl.agents.base import BatchAgent, LabelledBatch, optimizer_state, set_optimizer_state
from zoomrl.agents.ram.config import RamConfig

PREDICT_MODES = ("mean", "sample")


def _optimizer(name: str, learning_rate: float, momentum: float, weight_average: float = 0.0):
    """Keras's optimizer; ``weight_average`` > 0 turns on its moving average of the weights (``use_ema``), updated
    in the same compiled step as the weights."""
    import keras

    ema = dict(use_ema=True, ema_momentum=float(weight_average)) if weight_average > 0 else {}
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate, **ema)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum, **ema)
    raise ValueError(f"optimizer must be adam or sgd; received {name!r}")


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _as_batch(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images, dtype=np.float32)
    return images[..., None] if images.ndim == 3 else images


class _KerasAgent(BatchAgent):
    model: Any

    def _compile(
        self,
        optimizer: str,
        learning_rate: float,
        momentum: float,
        image_shape: tuple[int, ...],
        jit_compile: bool | str,
        run_eagerly: bool = False,
        weight_average: float = 0.0,
    ) -> None:
        opt = _optimizer(optimizer, learning_rate, momentum, weight_average)
        self.model.compile(optimizer=opt, jit_compile=jit_compile, run_eagerly=run_eagerly)
        self.model(np.zeros((1, *image_shape), np.float32))  # build the weights
        self.model.optimizer.build(self.model.trainable_variables)

    def set_learning_rate(self, value: float) -> None:
        """Set the optimizer's learning rate (a variable: a compiled training step reads the value set here)."""
        self.model.optimizer.learning_rate.assign(float(value))

    def learn(self, batch: LabelledBatch) -> dict[str, float]:
        """One ``train_on_batch``; its logs are this batch's alone (``train_on_batch`` resets the metrics first)."""
        logs = self.model.train_on_batch(_as_batch(batch.inputs), np.asarray(batch.targets), return_dict=True)
        return {k: float(v) for k, v in logs.items()}

    def learn_pass(
        self, images: np.ndarray, targets: np.ndarray, batch_size: int, progress: Callable[[int], None], name: str
    ) -> dict[str, float]:
        """One pass of :meth:`learn` over equal batches of ``batch_size`` (capped at the pass's size: XLA compiles
        one shape; the rest waits for the next pass); returns the batches' mean logs, ``progress(n)`` after each.
        A non-finite loss is a :class:`FloatingPointError` naming model ``name`` (the run driver saves nothing)."""
        bs = min(batch_size, len(images))
        n_batches = len(images) // bs
        sums: dict[str, float] = {}
        for b in range(n_batches):
            logs = self.learn(LabelledBatch(images[b * bs : (b + 1) * bs], targets[b * bs : (b + 1) * bs]))
            if not np.isfinite(logs.get("loss", 0.0)):
                raise FloatingPointError(f"the loss of {name} is not finite")
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v / n_batches
            progress(bs)
        return sums

    def begin_epoch(self, seed: int) -> None:
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Set the random draws of the model's passes to a state that depends only on ``seed`` (none by default:
        the whole-image networks draw nothing)."""

    @property
    def averaged(self) -> bool:
        """Whether the optimizer keeps a moving average of the weights (``weight_average`` > 0)."""
        return bool(getattr(self.model.optimizer, "use_ema", False))

    def raw_weights(self) -> list[np.ndarray]:
        """The trainable weights that the updates move (not their average)."""
        import keras

        return [np.array(keras.ops.convert_to_numpy(v)) for v in self.model.trainable_variables]

    def set_raw_weights(self, values: Sequence[np.ndarray]) -> None:
        variables = self.model.trainable_variables
        if len(values) != len(variables):
            raise ValueError(f"{len(values)} raw weights for {len(variables)} trainable variables")
        for v, value in zip(variables, values, strict=True):
            v.assign(value)

    def use_raw_weights(self, state: Mapping[str, np.ndarray]) -> None:
        """Set the model to the raw weights that :meth:`get_state` of an averaging agent saved (the test's
        ``unaveraged`` figures); a state without them is a :class:`ValueError`."""
        if "raw_weight_count" not in state:
            raise ValueError("this run state holds no raw weights (the run did not average its weights)")
        self.set_raw_weights([state[f"raw_weight_{i}"] for i in range(int(state["raw_weight_count"]))])

    def get_state(self) -> dict[str, np.ndarray]:
        """The optimizer's variables (with the weights' average, when kept) and, for an averaging agent, the raw
        weights: its weights file holds the average."""
        out = optimizer_state(self.model.optimizer)
        if self.averaged:
            raw = self.raw_weights()
            out["raw_weight_count"] = np.array(len(raw))
            out.update({f"raw_weight_{i}": w for i, w in enumerate(raw)})
        return out

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        set_optimizer_state(self.model.optimizer, state)
        if self.averaged:  # after load_weights (the average): training continues from the raw weights
            self.use_raw_weights(state)

    def save_weights(self, path: str | Path) -> None:
        """The weights file; for an averaging agent the averaged weights, the model keeping its raw ones."""
        if not self.averaged:
            self.model.save_weights(str(path))
            return
        raw = self.raw_weights()
        self.model.optimizer.finalize_variable_values(self.model.trainable_variables)
        try:
            self.model.save_weights(str(path))
        finally:
            self.set_raw_weights(raw)

    def load_weights(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such weights file")
        try:
            self.model.load_weights(str(path))
        except Exception as exc:  # Keras raises several types for a file that does not fit
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"{path}: weights do not fit this model ({first})") from None

    def weights(self) -> list[np.ndarray]:
        import keras

        return [np.array(keras.ops.convert_to_numpy(v)) for v in self.model.weights]


class RamAgent(_KerasAgent):
    """RAM (:class:`zoomrl.agents.ram.network.RamModel`); ``model_kwargs`` go to the model."""

    def __init__(
        self,
        image_shape: tuple[int, ...],
        optimizer: str = "adam",
        learning_rate: float = 1e-3,
        momentum: float = 0.9,
        jit_compile: bool | str = "auto",
        run_eagerly: bool = False,
        seed: int = 0,
        weight_average: float = 0.0,
        **model_kwargs: Any,
    ) -> None:
        from zoomrl.agents.ram.network import RamModel

        image_shape = tuple(image_shape) if len(image_shape) == 3 else (*image_shape, 1)
        self.image_shape = image_shape
        self.model = RamModel(seed=seed, **model_kwargs)
        self._compile(optimizer, learning_rate, momentum, image_shape, jit_compile, run_eagerly, weight_average)

    @property
    def glimpses(self) -> int:
        return self.model.glimpses

    def set_loc_std(self, value: float) -> None:
        """Set the location policy's standard deviation (an annealed model only: ``anneal_loc_std``)."""
        if self.model.loc_std_var is None:
            raise ValueError("set_loc_std needs a model built with anneal_loc_std=True (loc_std_final > 0)")
        self.model.loc_std_var.assign(float(value))

    def reseed(self, seed: int) -> None:
        """Set the model's random generator to a state that only depends on ``seed`` (each epoch, each test)."""
        import keras

        state = self.model.seed_generator.state
        dtype = keras.ops.convert_to_numpy(state).dtype
        state.assign(np.array([seed % (2**31), 0], dtype=dtype))

    def get_state(self) -> dict[str, np.ndarray]:
        import keras

        out = super().get_state()
        out["seed_state"] = np.array(keras.ops.convert_to_numpy(self.model.seed_generator.state))
        return out

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        super().set_state(state)
        self.model.seed_generator.state.assign(np.asarray(state["seed_state"]))

    def act(self, observations: np.ndarray, explore: bool = False) -> np.ndarray:
        """The glimpse locations ``(B, T, 2)`` for a batch of images (explore: sampled; else the mean path from
        the centre)."""
        first = np.zeros((len(observations), 2), np.float32)
        return self.predict(observations, "sample" if explore else "mean", first_locations=first, samples=1)[1][:, 0]

    def rollout(
        self, images: np.ndarray, first_locations: np.ndarray | None, stochastic: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        import keras

        out, _, locs, _ = self.model.rollout(_as_batch(images), first_locations, stochastic=stochastic)
        # Unclipped samples (logp_unclipped) are reported where the sensor read them.
        locs = np.clip(np.asarray(keras.ops.convert_to_numpy(locs)), -1.0, 1.0)
        return np.asarray(keras.ops.convert_to_numpy(out)), locs

    def predict(
        self,
        images: np.ndarray,
        mode: str = "mean",
        first_locations: np.ndarray | None = None,
        samples: int = 10,
        batch_size: int = 256,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(outputs, paths)``: outputs are class probabilities ``(B, K)`` or locations ``(B, 2)``; paths the
        glimpse locations ``(B, S, T, 2)`` (``S`` = 1 for the mean path)."""
        if mode not in PREDICT_MODES:
            raise ValueError(f"predict mode must be one of {', '.join(PREDICT_MODES)}; received {mode!r}")
        if mode == "mean" and first_locations is None and not self.model.has_fixed_start():
            raise ValueError("the mean path needs first_locations (this model's first location is uniform)")
        images = _as_batch(images)
        outs, paths = [], []
        for i in range(0, len(images), batch_size):
            chunk = images[i : i + batch_size]
            if mode == "mean":
                first = None if first_locations is None else first_locations[i : i + batch_size]
                out, locs = self.rollout(chunk, first, stochastic=False)
                outs.append(_softmax(out) if self.model.task == "classify" else out)
                paths.append(locs[:, None])
            else:
                acc, ps = 0.0, []
                for _ in range(samples):
                    out, locs = self.rollout(chunk, None, stochastic=True)
                    acc = acc + (_softmax(out) if self.model.task == "classify" else out)
                    ps.append(locs)
                outs.append(acc / samples)
                paths.append(np.stack(ps, axis=1))
        return np.concatenate(outs), np.concatenate(paths)


class WholeImageAgent(_KerasAgent):
    """A whole-image CNN or MLP (:class:`zoomrl.agents.ram.baselines.WholeImageNet`)."""

    def __init__(
        self,
        image_shape: tuple[int, ...],
        kind: str = "cnn",
        task: str = "classify",
        n_outputs: int = 10,
        reg_loss: str = "l1",
        hidden: int = 256,
        optimizer: str = "adam",
        learning_rate: float = 1e-3,
        momentum: float = 0.9,
        jit_compile: bool | str = "auto",
        run_eagerly: bool = False,
        seed: int = 0,
    ) -> None:
        from zoomrl.agents.ram.baselines import WholeImageNet

        image_shape = tuple(image_shape) if len(image_shape) == 3 else (*image_shape, 1)
        self.image_shape = image_shape
        self.model = WholeImageNet(kind=kind, task=task, n_outputs=n_outputs, reg_loss=reg_loss, hidden=hidden)
        self._compile(optimizer, learning_rate, momentum, image_shape, jit_compile, run_eagerly)

    def act(self, observations: np.ndarray, explore: bool = False) -> np.ndarray:
        return self.predict(observations)

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        import keras

        images = _as_batch(images)
        outs = []
        for i in range(0, len(images), batch_size):
            out = np.asarray(keras.ops.convert_to_numpy(self.model(images[i : i + batch_size])))
            outs.append(_softmax(out) if self.model.task == "classify" else out)
        return np.concatenate(outs)


def jit_for(kind: str, xla: bool = True) -> bool | str:
    """XLA on TensorFlow for dense networks (about 2x faster steps on a CPU, seconds of compiling first), never
    for convolutions (much slower there); other backends keep Keras's choice."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return "auto"
    return bool(xla) and kind in ("fc", "mlp")


def speed_line(cfg: RamConfig) -> str:
    """The compiled path in force, in one line. Measured with scripts/bench_glimpse_backends.py (docs/glimpse.md,
    "Speed"): TensorFlow is the faster backend here (JAX's jit took 1.7x the CPU time of XLA for the fc RAM and 3.4x
    that of a plain graph for the conv one), so it stays the default."""
    import keras

    backend = keras.backend.backend()
    if cfg.eager:
        return f"speed: {backend}, eager (no compiled graph: slow, for tests)"
    if backend != "tensorflow":
        return f"speed: {backend} (KERAS_BACKEND); TensorFlow measured faster for these networks"
    kind = "XLA (jit_compile)" if jit_for(cfg.glimpse_net, cfg.xla) else "a tf.function graph, no XLA"
    return f"speed: TensorFlow, RAM's {cfg.glimpse_net} glimpse network compiled as {kind} (the faster path measured)"


def build_agent(
    name: str, cfg: RamConfig, image_shape: tuple[int, ...], n_outputs: int, task: str, seed: int
) -> RamAgent | WholeImageAgent:
    """The agent of one model: ``ram`` (learned glimpses), ``random`` (RAM with uniformly random glimpses), or a
    whole-image ``cnn`` or ``mlp``."""
    common = dict(optimizer=cfg.optimizer, learning_rate=cfg.learning_rate, momentum=cfg.momentum, seed=seed)
    common.update(run_eagerly=cfg.eager, task=task, n_outputs=n_outputs, reg_loss=cfg.reg_loss)
    if name not in ("ram", "random"):
        kind = dict(kind=name, hidden=cfg.baseline_hidden, jit_compile=jit_for(name, cfg.xla))
        return WholeImageAgent(image_shape, **kind, **common)
    return RamAgent(
        image_shape,
        jit_compile=jit_for(cfg.glimpse_net, cfg.xla),
        glimpses=cfg.glimpses,
        glimpse_size=cfg.glimpse_size,
        scales=cfg.scales,
        glimpse_net=cfg.glimpse_net,
        core=cfg.core,
        glimpse_hidden=cfg.glimpse_hidden,
        loc_hidden=cfg.loc_hidden,
        glimpse_units=cfg.glimpse_units,
        core_units=cfg.core_units,
        loc_std=cfg.loc_std,
        anneal_loc_std=cfg.loc_std_final > 0 and name == "ram",
        random_locations=name == "random",
        reward=cfg.reward,
        reward_sigma=cfg.reward_sigma,
        reward_radius=cfg.reward_radius,
        supervised_weight=cfg.supervised_weight,
        reinforce_weight=cfg.reinforce_weight,
        mean_path_weight=cfg.mean_path_weight if name == "ram" else 0.0,
        weight_average=cfg.weight_average,
        first_location=cfg.first_location,
        logp_unclipped=cfg.logp_unclipped,
        **common,
    )
