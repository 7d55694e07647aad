"""PatchDrop's hyperparameters: the networks, how they run, and each stage's optimiser, batch, epochs and penalty.

One documented dataclass that the patchdrop family's configuration extends with its run and data fields (as
:class:`zoomrl.agents.dqn.config.DQNConfig` is for the value-based families). The defaults are the paper's (its
README's values for CIFAR-10; it gives no epoch counts, so those are ours). Also here: which fields each stage reads
(``--stage N`` may change those of N and later) and the sharing of a run's epochs among the stages.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from zoomrl.core.config import ConfigBase, ConfigError, require_choice, require_finite, require_positive_int

STAGES = ("classifiers", "pretrain", "finetune", "two_stream")


@dataclasses.dataclass
class PatchDropAgentConfig(ConfigBase):
    # -- patches and networks -----------------------------------------------------------------------------------
    grid: int = 4
    """Patches per side: P = grid^2 = 16."""
    lr_size: int = 8
    """Side of the low-resolution image the policy and the LR classifier see."""
    classifier_blocks: int = 5
    """Basic blocks per stage of the classifiers: 5 = ResNet-32."""
    policy_blocks: int = 1
    """Basic blocks per stage of the policy: 1 = ResNet-8."""
    width: int = 16
    """Filters of the first stage (then 2x, 4x)."""
    run_eagerly: bool = False
    """Updates without graph tracing: slower per step, but no 10-30 s of tracing per network (tiny models)."""
    execution: str = "graph"
    """How the networks run when not ``run_eagerly``: ``graph`` (forwards and updates traced once, by
    ``tf.function``; under JAX ``jax.jit``) or ``xla`` (TensorFlow with ``jit_compile``); ``eager`` runs the
    forwards op by op (``scripts/bench_patchdrop.py`` times them)."""
    # -- stage 1: classifiers -----------------------------------------------------------------------------------
    classifier_epochs: int = 160
    classifier_batch: int = 128
    classifier_optimizer: str = "sgd"
    """``sgd`` (momentum 0.9) or ``adam``."""
    classifier_lr: float = 0.1
    weight_decay: float = 5e-4
    """Stage 1's L2 penalty, as the paper's PyTorch SGD applies it: ``weight_decay * w`` added to every trainable
    weight's gradient before momentum (or Adam's moments); see :mod:`zoomrl.agents.patchdrop.optim`."""
    classifier_mask_max: float = 0.0
    """Stage 1 trains the HR classifier on images with patches dropped: per image a rate drawn uniformly in
    [0, classifier_mask_max], that share of the patches (rounded) zeroed at random; 0 = whole images only. The
    policy will show it images with patches missing; trained on whole ones only, it loses accuracy for every patch
    dropped and the policy learns to keep most of them."""
    augment: bool = True
    """CIFAR only: random 4-pixel shifts and horizontal flips in stage 1 (digit canvases are never flipped)."""
    precise_bn: bool = False
    """At the end of every stage, replace the BatchNorm moving statistics of the networks it trained with their
    average over one pass of the training images, computed with the final weights ("precise BN",
    :mod:`zoomrl.agents.batchnorm`). The moving averages lag behind weights that still move fast, and inference
    mode (the test, and the HR classifier that rewards stage 2's policies) then runs another network than the one
    trained. A stage-1 field: every later stage reads it too."""
    # -- stage 2: policy pre-training (HR classifier fixed) -----------------------------------------------------
    pretrain_epochs: int = 400
    pretrain_batch: int = 1024
    pretrain_lr: float = 1e-4
    pretrain_sigma: float = 0.5
    """Penalty of a wrong prediction (reward -sigma) for the policy that stage 3 fine-tunes."""
    sigma_curve: list = dataclasses.field(default_factory=lambda: [0.5])
    """Stage 2 trains one policy per penalty listed (the accuracy/patches curve); must include pretrain_sigma."""
    alpha: float = 0.8
    """Exploration: p' = alpha p + (1 - alpha)(1 - p)."""
    alpha_final: float = 0.0
    """Anneal alpha in each policy stage (2, 3, 4): linear from ``alpha`` at the stage's first update to
    ``alpha_final`` at its last (less exploration as the policy firms up); 0 = ``alpha`` throughout."""
    # -- stage 3: fine-tuning (policy and HR classifier) --------------------------------------------------------
    finetune_epochs: int = 200
    finetune_batch: int = 128
    finetune_lr: float = 1e-4
    """Adam learning rate of the policy in stage 3."""
    finetune_classifier_lr: float = 1e-4
    """Adam learning rate of the HR classifier in stage 3."""
    finetune_sigma: float = 10.0
    # -- stage 4: two-stream (optional; 0 epochs skips it) ------------------------------------------------------
    two_stream_epochs: int = 100
    two_stream_batch: int = 128
    two_stream_lr: float = 1e-4
    two_stream_sigma: float = 10.0

    def validate(self) -> PatchDropAgentConfig:
        super().validate()
        for stage in STAGES:
            require_positive_int(f"{PREFIX[stage]}_batch", getattr(self, f"{PREFIX[stage]}_batch"))
            require_positive_int(EPOCH_FIELDS[stage], getattr(self, EPOCH_FIELDS[stage]), allow_zero=True)
        for name in ("grid", "lr_size", "classifier_blocks", "policy_blocks", "width"):
            require_positive_int(name, getattr(self, name))
        require_choice("classifier_optimizer", self.classifier_optimizer, ("sgd", "adam"))
        require_choice("execution", self.execution, ("eager", "graph", "xla"))
        for name in ("classifier_lr", "pretrain_lr", "finetune_lr", "finetune_classifier_lr", "two_stream_lr"):
            require_finite(name, getattr(self, name), low=0.0, low_open=True)
        require_finite("weight_decay", self.weight_decay, low=0.0)
        require_finite("alpha", self.alpha, low=0.5, high=1.0)
        if self.alpha_final != 0:
            require_finite("alpha_final", self.alpha_final, low=0.5, high=1.0)
        require_finite("classifier_mask_max", self.classifier_mask_max, low=0.0, high=1.0)
        for name in ("pretrain_sigma", "finetune_sigma", "two_stream_sigma"):
            require_finite(name, getattr(self, name), low=0.0)
        if not isinstance(self.sigma_curve, (list, tuple)) or not self.sigma_curve:
            raise ConfigError(f"sigma_curve must be a non-empty list of penalties, received {self.sigma_curve!r}")
        for s in self.sigma_curve:
            require_finite("sigma_curve entry", s, low=0.0)
        self.sigma_curve = sorted(float(s) for s in self.sigma_curve)
        if float(self.pretrain_sigma) not in self.sigma_curve:
            raise ConfigError(f"sigma_curve {self.sigma_curve} must include pretrain_sigma={self.pretrain_sigma}")
        return self

    def stage_epochs(self, stage: str) -> int:
        return int(getattr(self, EPOCH_FIELDS[stage]))

    def stage_batch(self, stage: str) -> int:
        return int(getattr(self, f"{PREFIX[stage]}_batch"))

    def stage_sigmas(self, stage: str) -> list[float]:
        """The penalty of each agent ``stage`` trains (stage 2: one policy per entry of ``sigma_curve``; stage 1's
        agent carries ``pretrain_sigma`` though it is rewarded by none)."""
        return {
            "classifiers": [self.pretrain_sigma],
            "pretrain": list(self.sigma_curve),
            "finetune": [self.finetune_sigma],
            "two_stream": [self.two_stream_sigma],
        }[stage]

    def run_epochs(self) -> int:
        """The whole run's epochs: the sum over the stages (stage 2 counts once, whatever its penalties)."""
        return sum(self.stage_epochs(s) for s in STAGES)

    def stage_ends(self) -> list[int]:
        """The run's epoch at which each stage ends (cumulative epoch counts)."""
        ends, total = [], 0
        for s in STAGES:
            total += self.stage_epochs(s)
            ends.append(total)
        return ends

    def stage_at(self, epoch: int) -> tuple[int, int]:
        """0-based run ``epoch`` -> (stage index, 1-based epoch within the stage)."""
        ends = self.stage_ends()
        k = next(i for i, end in enumerate(ends) if epoch < end)
        return k, epoch - (ends[k - 1] if k else 0) + 1


PREFIX = {"classifiers": "classifier", "pretrain": "pretrain", "finetune": "finetune", "two_stream": "two_stream"}
"""The prefix of each stage's fields."""
EPOCH_FIELDS = {s: f"{PREFIX[s]}_epochs" for s in STAGES}
"""Each stage's epoch field, in stage order."""
STAGE_FIELDS = {
    "classifiers": (
        "classifier_epochs",
        "classifier_batch",
        "classifier_optimizer",
        "classifier_lr",
        "weight_decay",
        "classifier_mask_max",
        "augment",
        "precise_bn",
    ),
    "pretrain": (
        "pretrain_epochs",
        "pretrain_batch",
        "pretrain_lr",
        "pretrain_sigma",
        "sigma_curve",
        "alpha",
        "alpha_final",
    ),
    "finetune": ("finetune_epochs", "finetune_batch", "finetune_lr", "finetune_classifier_lr", "finetune_sigma"),
    "two_stream": ("two_stream_epochs", "two_stream_batch", "two_stream_lr", "two_stream_sigma"),
}
"""The fields only a stage (and the stages after it) reads: ``--stage N`` may change those of N and later."""


def split_epochs(total: int, counts: list[int]) -> list[int]:
    """``total`` epochs shared among the stages in proportion to ``counts`` (a preset's), by largest remainder
    (ties to the earlier stage); a stage with a count keeps at least 1 (taken from the largest), one without
    stays at 0. ``total == sum(counts)`` gives ``counts`` back."""
    counts = [int(c) for c in counts]
    active = [i for i, c in enumerate(counts) if c > 0]
    if total == 0 or not active:
        return [0] * len(counts)
    if total < len(active):
        raise ConfigError(f"{total} epochs cannot be shared among {len(active)} stages (each needs at least 1)")
    whole = sum(counts)
    quota = [total * c / whole for c in counts]
    out = [int(q) for q in quota]
    for i in sorted(active, key=lambda i: (-(quota[i] - out[i]), i))[: total - sum(out)]:
        out[i] += 1
    for i in active:
        if out[i] == 0:
            out[max(range(len(out)), key=lambda j: (out[j], -j))] -= 1
            out[i] = 1
    return out


def epoch_overrides(
    base: Any, epochs: int | None = None, stage_epochs: str | None = None, stage: str | None = None
) -> dict[str, int]:
    """The epoch fields of a run from the command line's ``--epochs`` (the whole run's epochs, shared among the
    stages in proportion to ``base``'s, :func:`split_epochs`; ``--stage`` only picks which stage runs) or
    ``--stage-epochs`` (one count: every stage's, or the ``--stage`` given's; or one count per stage, stage 1
    first, 3 or 4 of them: stage 4 keeps ``base``'s when only 3 are given)."""
    if epochs is not None and stage_epochs is not None:
        raise ConfigError("give --epochs (the whole run's) or --stage-epochs (each stage's), not both")
    if epochs is not None:
        if epochs < 0:
            raise ConfigError(f"--epochs must be a non-negative integer, received {epochs}")
        counts = [base.stage_epochs(s) for s in STAGES]
        try:
            split = split_epochs(epochs, counts)
        except ConfigError as exc:
            raise ConfigError(
                f"--epochs {epochs}: {exc} (preset {base.preset}: {', '.join(map(str, counts))}); "
                f"use --stage-epochs for per-stage counts"
            ) from None
        return {EPOCH_FIELDS[s]: n for s, n in zip(STAGES, split)}
    if stage_epochs is None:
        return {}
    try:
        values = [int(v) for v in stage_epochs.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 0 or len(values) not in (1, 3, 4):
        raise ConfigError(
            f"--stage-epochs expects N or S1,S2,S3[,S4] (non-negative integers), received {stage_epochs!r}"
        )
    if len(values) == 1:
        return {EPOCH_FIELDS[s]: values[0] for s in ([stage] if stage else STAGES)}
    return {EPOCH_FIELDS[s]: n for s, n in zip(STAGES, values)}
