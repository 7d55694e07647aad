"""The PatchDrop agent: a policy network, the high-resolution (HR) classifier and the low-resolution (LR) one.

Stages (paper section 3.4; ``stage`` names as in :data:`STAGES`):

1. ``classifiers``: the HR classifier on full images, the LR classifier on the low-resolution ones
   (cross-entropy);
2. ``pretrain``: the policy by REINFORCE with the HR classifier fixed;
3. ``finetune``: the policy (REINFORCE) and the HR classifier (cross-entropy on the sampled, masked images)
   together;
4. ``two_stream``: the policy again, rewarded on the two-stream output ``(S/P) s_HR + (1 - S/P) s_LR``
   (both classifiers fixed).

:meth:`PatchDropAgent.configure` selects the stage; :meth:`PatchDropAgent.learn` (a :class:`BatchAgent`'s, on a
:class:`LabelledBatch` of images and labels) runs one update of what it trains. In stages 2-4 it draws the greedy
actions (``p >= 0.5``) and sampled ones (Bernoulli of
the mixed ``p'``), rewards both and takes the self-critical advantage ``r(sampled) - r(greedy)``. Every random
draw comes from the agent's NumPy generator, saved by :meth:`get_state`, so a resumed run repeats the straight one.
The networks are Functional/subclassed Keras models updated with ``train_on_batch`` only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from zoomrl.agents.base import BatchAgent, LabelledBatch, optimizer_state, set_optimizer_state
from zoomrl.agents.patchdrop import patches as pt
from zoomrl.agents.patchdrop.config import STAGES


def save_networks(path: str | Path, networks: Mapping[str, Any]) -> None:
    """Every weight (trainable or not) of each named network into one HDF5 file: ``<name>/<index>``."""
    import h5py

    with h5py.File(path, "w") as f:
        for name, net in networks.items():
            g = f.create_group(name)
            for i, w in enumerate(net.get_weights()):
                g.create_dataset(str(i), data=w)


def load_networks(path: str | Path, networks: Mapping[str, Any]) -> None:
    """Read :func:`save_networks`'s file into ``networks``; a missing file, network or shape names itself."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: damaged weights file ({exc})") from None
    with f:
        for name, net in networks.items():
            if name not in f:
                raise ValueError(f"{path}: holds no '{name}' network (found {', '.join(sorted(f)) or 'nothing'})")
            current = net.get_weights()
            stored = [np.asarray(f[name][str(i)]) for i in range(len(f[name]))]
            shapes = [w.shape for w in current]
            if [w.shape for w in stored] != shapes:
                raise ValueError(
                    f"{path}: the '{name}' network in this file does not fit this configuration "
                    f"({len(stored)} arrays stored, {len(current)} expected, or shapes differ)"
                )
            net.set_weights(stored)


def forward(net: Any, x: np.ndarray) -> np.ndarray:
    """Inference-mode outputs as float64 NumPy (a direct call: no graph tracing, which costs more than it saves
    for one call per batch)."""
    from keras import ops

    return np.asarray(ops.convert_to_numpy(net(np.asarray(x, np.float32), training=False)), np.float64)


def _optimizer(kind: str, learning_rate: float, weight_decay: float = 0.0):
    from zoomrl.agents.patchdrop.optim import make_optimizer

    return make_optimizer(kind, learning_rate, weight_decay)


def training_forward(net: Any, x: np.ndarray) -> np.ndarray:
    """``net``'s outputs in training mode (BatchNorm on ``x``'s own statistics), as ``train_on_batch`` computes
    them for the same batch, as float64 NumPy. Stateless: the moving statistics are left alone, so the update
    itself changes them once, as it would without this call."""
    from keras import ops

    out, _ = net.stateless_call(
        [v.value for v in net.trainable_variables],
        [v.value for v in net.non_trainable_variables],
        np.asarray(x, np.float32),
        training=True,
    )
    return np.asarray(ops.convert_to_numpy(out), np.float64)


EXECUTIONS = ("eager", "graph", "xla")


def backend_name() -> str:
    import keras

    return keras.backend.backend()


class CompiledForward:
    """One network's outputs, compiled once per input shape: inference mode, or training mode stateless (BatchNorm
    on the batch's own statistics, the moving statistics left alone, see :func:`training_forward`).

    ``execution``: ``eager`` (op by op, no tracing), ``graph`` (``tf.function``; under JAX ``jax.jit``) or ``xla``
    (``tf.function(jit_compile=True)``; under JAX the same as ``graph``). Called op by op, a small ResNet costs
    tens of milliseconds of per-layer Python overhead on a CPU, more than its arithmetic; a traced graph pays it
    once. The variables are passed as arguments, so the compiled function reads their current values."""

    def __init__(self, net: Any, training: bool, execution: str = "graph") -> None:
        if execution not in EXECUTIONS:
            raise ValueError(f"execution must be one of {', '.join(EXECUTIONS)}; received {execution!r}")
        self.net = net
        self.training = bool(training)

        def call(trainable: list, non_trainable: list, x: Any) -> Any:
            out, _ = net.stateless_call(trainable, non_trainable, x, training=self.training)
            return out

        backend = backend_name()
        if execution == "eager" or backend not in ("tensorflow", "jax"):
            self.fn = call
        elif backend == "tensorflow":
            import tensorflow as tf

            self.fn = tf.function(call, jit_compile=execution == "xla", reduce_retracing=True)
        else:
            import jax

            self.fn = jax.jit(call)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        from keras import ops

        out = self.fn(
            [v.value for v in self.net.trainable_variables],
            [v.value for v in self.net.non_trainable_variables],
            np.asarray(x, np.float32),
        )
        return np.asarray(ops.convert_to_numpy(out), np.float64)


def describe_execution(config: Any) -> str:
    """The start-up line that says how the networks run."""
    backend = backend_name()
    if getattr(config, "run_eagerly", False):
        return f"networks: {backend}, op by op (run_eagerly: no tracing, slower per update)"
    execution = str(getattr(config, "execution", "graph"))
    if backend == "jax":
        return "networks: jax, forwards and updates through jax.jit"
    if execution == "eager":
        return f"networks: {backend}, forwards op by op, updates traced (execution eager)"
    how = (
        "compiled by XLA (execution xla)"
        if execution == "xla"
        else "traced once by tf.function (execution graph: 2.5x faster per policy update than forwards op by op)"
    )
    return f"networks: {backend}, forwards and updates {how}"


class PatchDropAgent(BatchAgent):
    """See the module docstring. ``config`` is a :class:`zoomrl.agents.patchdrop.config.PatchDropAgentConfig`
    (or anything with its fields); ``classifiers`` shares an existing ``(hr, lr)`` pair between agents."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        num_classes: int,
        config: Any,
        seed: int = 0,
        classifiers: tuple[Any, Any] | None = None,
        sigma: float | None = None,
    ) -> None:
        from zoomrl.agents.patchdrop.policy import PolicyNetwork
        from zoomrl.agents.patchdrop.resnet import cifar_resnet

        self.config = config
        self.grid = int(config.grid)
        self.patches = self.grid**2
        self.image_shape = tuple(int(v) for v in image_shape)
        h, w, c = self.image_shape
        if h % self.grid or w % self.grid:
            raise ValueError(f"images of {h}x{w} cannot be cut into a {self.grid}x{self.grid} grid of patches")
        if h % config.lr_size or w % config.lr_size:
            raise ValueError(f"images of {h}x{w} cannot be averaged down to lr_size={config.lr_size}")
        self.lr_shape = (int(config.lr_size), int(config.lr_size), c)
        self.num_classes = int(num_classes)
        self.sigma = float(config.pretrain_sigma if sigma is None else sigma)
        self.alpha = float(config.alpha)
        if classifiers is None:
            classifiers = (
                cifar_resnet(self.image_shape, config.classifier_blocks, num_classes, "softmax", config.width, "hr"),
                cifar_resnet(self.lr_shape, config.classifier_blocks, num_classes, "softmax", config.width, "lr"),
            )
        self.hr, self.lr = classifiers
        self.policy = PolicyNetwork(self.lr_shape, self.patches, config.policy_blocks, config.width, self.alpha)
        self.rng = np.random.default_rng(seed)
        self.alpha_final = float(getattr(config, "alpha_final", 0.0) or self.alpha)
        self.updates = 0  # policy updates of this stage so far (the alpha schedule's clock; in the state)
        self.total_updates = 0  # policy updates the stage will run (0: no schedule, alpha throughout)
        self.mask_max = float(getattr(config, "classifier_mask_max", 0.0))
        self.stage: str | None = None
        self.trained: dict[str, Any] = {}
        eager = bool(getattr(config, "run_eagerly", False))
        self.execution = "eager" if eager else str(getattr(config, "execution", "graph"))
        if self.execution not in EXECUTIONS:
            raise ValueError(f"execution must be one of {', '.join(EXECUTIONS)}; received {self.execution!r}")
        # Under TensorFlow XLA is a choice (``execution: xla``); Keras's JAX trainer is only fast jitted.
        jit = self.execution == "xla" or (backend_name() == "jax" and not eager)
        self._compile = {"jit_compile": jit, "run_eagerly": eager}
        self._forwards: dict[tuple[str, bool], CompiledForward] = {}

    # -- set-up -------------------------------------------------------------------------------------------------
    def configure(self, stage: str, sigma: float | None = None) -> None:
        """Compile (fresh optimizers) the networks that ``stage`` trains; ``sigma`` is the wrong-answer penalty."""
        c = self.config
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}; received {stage!r}")
        if sigma is not None:
            self.sigma = float(sigma)
        ce = "sparse_categorical_crossentropy"
        if stage == "classifiers":
            for net in (self.hr, self.lr):
                net.compile(
                    optimizer=_optimizer(c.classifier_optimizer, c.classifier_lr, c.weight_decay),
                    loss=ce,
                    **self._compile,
                )
            self.trained = {"hr": self.hr, "lr": self.lr}
        else:
            lr = {"pretrain": c.pretrain_lr, "finetune": c.finetune_lr, "two_stream": c.two_stream_lr}[stage]
            self.policy.compile(optimizer=_optimizer("adam", lr), **self._compile)
            self.trained = {"policy": self.policy}
            if stage == "finetune":
                self.hr.compile(optimizer=_optimizer("adam", c.finetune_classifier_lr), loss=ce, **self._compile)
                self.trained["hr"] = self.hr
        for net in self.trained.values():
            net.optimizer.build(net.trainable_variables)
        self.stage = stage
        self.updates = self.total_updates = 0

    def schedule(self, total_updates: int) -> None:
        """The number of policy updates this stage will run: ``alpha`` anneals to ``alpha_final`` over them."""
        self.total_updates = int(total_updates)

    def current_alpha(self) -> float:
        """The exploration ``alpha`` of the next policy update (:func:`patches.annealed_alpha`)."""
        if not self.total_updates:
            return self.alpha
        return pt.annealed_alpha(self.alpha, self.alpha_final, self.updates, self.total_updates)

    def run(self, name: str, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Outputs of network ``name`` (``policy``, ``hr``, ``lr``) as float64 NumPy, in inference mode or in
        training mode without touching the moving statistics, compiled as :attr:`execution` says."""
        key = (name, bool(training))
        if key not in self._forwards:
            self._forwards[key] = CompiledForward(self.networks()[name], training, self.execution)
        return self._forwards[key](x)

    # -- acting -------------------------------------------------------------------------------------------------
    def low_resolution(self, images: np.ndarray) -> np.ndarray:
        return pt.low_resolution(images, self.lr_shape[0])

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """The policy's keep-probabilities ``(B, P)`` for HR ``images`` (seen at low resolution)."""
        return self.run("policy", self.low_resolution(images))

    def act(self, observations: np.ndarray, explore: bool = False, threshold: float = 0.5) -> np.ndarray:
        """Patches to keep ``(B, P)``: greedy (``p >= threshold``), or sampled from the mixed probabilities when
        ``explore``."""
        probs = self.probabilities(observations)
        if explore:
            return pt.sample_actions(pt.mix_probabilities(probs, self.alpha), self.rng)
        return pt.greedy_actions(probs, threshold)

    def hr_scores(self, images: np.ndarray, actions: np.ndarray | None = None) -> np.ndarray:
        """HR class probabilities of ``images`` with only ``actions``' patches kept (all when None)."""
        x = images if actions is None else pt.mask_patches(images, actions, self.grid)
        return self.run("hr", x)

    def lr_scores(self, images: np.ndarray) -> np.ndarray:
        return self.run("lr", self.low_resolution(images))

    def predict(self, images: np.ndarray, actions: np.ndarray, two_stream: bool = False) -> np.ndarray:
        """Predicted classes with ``actions``' patches kept (two-stream output when asked)."""
        scores = self.hr_scores(images, actions)
        if two_stream:
            scores = pt.two_stream(scores, self.lr_scores(images), actions)
        return scores.argmax(axis=1)

    # -- learning -----------------------------------------------------------------------------------------------
    def learn(self, batch: LabelledBatch) -> dict[str, float]:
        """One update of what :meth:`configure` selected on ``batch`` (images, labels); returns losses and, in the
        policy stages, mean rewards and patches."""
        if self.stage is None:
            raise RuntimeError(f"configure(stage) first, one of {', '.join(STAGES)}")
        images, labels = np.asarray(batch.inputs), np.asarray(batch.targets)
        if self.stage == "classifiers":
            return self._learn_classifiers(images, labels)
        return self._learn_policy(images, labels)

    def _learn_classifiers(self, images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """Stage 1: one cross-entropy update of each classifier."""
        x = images
        if self.mask_max > 0:  # patches dropped at a rate drawn per image (the LR classifier sees whole images)
            keep, _ = pt.random_patch_masks(len(images), self.patches, self.mask_max, self.rng)
            x = pt.mask_patches(images, keep, self.grid)
        hr = self.hr.train_on_batch(x, labels)
        lr = self.lr.train_on_batch(self.low_resolution(images), labels)
        return {"hr_loss": float(np.ravel(hr)[0]), "lr_loss": float(np.ravel(lr)[0])}

    def _learn_policy(self, images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """Stages 2-4: one self-critical REINFORCE update of the policy (and, in ``finetune``, one cross-entropy
        update of the HR classifier on the sampled, masked images). Returns losses and mean rewards."""
        n = len(labels)
        low = self.low_resolution(images)
        # On-policy: the actions are drawn from, and the greedy baseline read off, the very probabilities whose
        # log-likelihood the update differentiates (training mode, this batch's BatchNorm statistics). Sampled in
        # inference mode (moving statistics), early in training they differ, and the update pushes up the
        # probability of actions this policy did not take.
        probs = self.run("policy", low, training=True)
        alpha = self.current_alpha()
        greedy = pt.greedy_actions(probs)
        sampled = pt.sample_actions(pt.mix_probabilities(probs, alpha), self.rng)
        both = np.concatenate([sampled, greedy])
        scores = self.hr_scores(np.concatenate([images, images]), both)
        if self.stage == "two_stream":
            lr_scores = self.run("lr", low)
            scores = pt.two_stream(scores, np.concatenate([lr_scores, lr_scores]), both)
        correct = scores.argmax(axis=1) == np.concatenate([labels, labels])
        r_sampled = pt.reward(correct[:n], sampled, self.sigma)
        r_greedy = pt.reward(correct[n:], greedy, self.sigma)
        advantage = pt.self_critical_advantage(r_sampled, r_greedy)
        # alpha travels with the batch (a column of y), so a traced update reads this update's value
        y = np.concatenate([sampled, advantage[:, None], np.full((n, 1), alpha)], axis=1).astype(np.float32)
        out = {
            "policy_loss": float(np.ravel(self.policy.train_on_batch(low, y))[0]),
            "reward": float(r_sampled.mean()),
            "greedy_reward": float(r_greedy.mean()),
            "patches": float(sampled.sum(axis=1).mean()),
            "greedy_patches": float(greedy.sum(axis=1).mean()),
            "alpha": alpha,
        }
        self.updates += 1
        if self.stage == "finetune":
            masked = pt.mask_patches(images, sampled, self.grid)
            out["hr_loss"] = float(np.ravel(self.hr.train_on_batch(masked, labels))[0])
        return out

    def recalibrate_batchnorm(self, images: np.ndarray, batch_size: int, seed: int) -> int:
        """Precise BatchNorm statistics (:func:`zoomrl.agents.batchnorm.precise_batchnorm`) for every network the
        configured stage trained, from one pass of whole batches over ``images`` (shuffled by ``seed``), each network
        fed what the stage trained it on: the policy and the LR classifier the low-resolution images; the HR
        classifier, in stage 1 the images with patches dropped at the drawn rates (``classifier_mask_max``; whole
        ones without), in stage 3 the images masked by patches sampled from the (recalibrated) policy at the stage's
        last alpha. Draws come from their own generator, so the agent's are left as they were. Returns the batches
        used per network."""
        from zoomrl.agents.batchnorm import precise_batchnorm

        rng = np.random.default_rng(seed)
        order = rng.permutation(len(images))
        starts = range(0, len(images) - batch_size + 1, batch_size)
        n = 0
        for name, net in self.trained.items():  # the policy first: stage 3's HR classifier sees its patches
            batches = (images[order[i : i + batch_size]] for i in starts)
            if name == "hr":
                batches = (self._hr_training_inputs(x, rng) for x in batches)
            else:
                batches = (self.low_resolution(x) for x in batches)
            n = precise_batchnorm(net, batches)
        return n

    def _hr_training_inputs(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """What the configured stage trains the HR classifier on, for ``images`` (draws from ``rng``)."""
        if self.stage == "finetune":
            probs = self.run("policy", self.low_resolution(images))
            alpha = self.alpha_final if self.total_updates else self.alpha  # the stage's last update's
            return pt.mask_patches(images, pt.sample_actions(pt.mix_probabilities(probs, alpha), rng), self.grid)
        if self.mask_max > 0:
            keep, _ = pt.random_patch_masks(len(images), self.patches, self.mask_max, rng)
            return pt.mask_patches(images, keep, self.grid)
        return images

    # -- state --------------------------------------------------------------------------------------------------
    def networks(self) -> dict[str, Any]:
        return {"policy": self.policy, "hr": self.hr, "lr": self.lr}

    def save_weights(self, path: str | Path) -> None:
        save_networks(path, self.networks())

    def load_weights(self, path: str | Path, only: tuple[str, ...] | None = None) -> None:
        nets = self.networks()
        load_networks(path, {k: v for k, v in nets.items() if only is None or k in only})

    def set_networks(self, arrays: Mapping[str, list[np.ndarray]]) -> None:
        """Weights of the named networks (``policy``, ``hr``, ``lr``) from arrays (a run file's groups)."""
        nets = self.networks()
        for name, weights in arrays.items():
            if [w.shape for w in weights] != [w.shape for w in nets[name].get_weights()]:
                raise ValueError(f"the '{name}' network saved does not fit this configuration (shapes differ)")
            nets[name].set_weights(weights)

    def trained_arrays(self) -> dict[str, list[np.ndarray]]:
        """The weights of the networks the configured stage trains."""
        return {name: net.get_weights() for name, net in self.trained.items()}

    def get_state(self) -> dict[str, np.ndarray]:
        state: dict[str, np.ndarray] = {
            "rng": np.array(json.dumps(self.rng.bit_generator.state)),
            "sigma": np.array(self.sigma),
            "updates": np.array(self.updates),
        }
        for name, net in self.trained.items():
            state.update({f"{name}_{k}": v for k, v in optimizer_state(net.optimizer).items()})
        return state

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        self.rng.bit_generator.state = json.loads(str(state["rng"]))
        self.sigma = float(state["sigma"])
        self.updates = int(state.get("updates", 0))  # states written before the alpha schedule: none ran
        for name, net in self.trained.items():
            if f"{name}_optimizer_count" not in state:
                raise ValueError(f"the training state holds no optimizer for the '{name}' network")
            set_optimizer_state(net.optimizer, state, prefix=f"{name}_")
