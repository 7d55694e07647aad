"""The DQN's hyperparameters: one documented dataclass that a value-based family's configuration extends.

Every modern option is a field, off in the paper's values: target network and Double DQN, dueling heads, n-step
returns, oracle demonstrations with DQfD's large-margin loss, and a behaviour-cloning warm-up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from zoomrl.core.config import ConfigBase, ConfigError, require_choice, require_finite, require_positive_int


@dataclass
class DQNConfig(ConfigBase):
    MODEL_FIELDS = ("hidden_units", "dropout", "dueling", "iou_weight")
    # --- network --------------------------------------------------------------------------------------------
    hidden_units: int = 1024
    """Units of each of the two hidden Dense layers (paper: 1024)."""
    dropout: float = 0.2
    """Dropout after each hidden layer (paper: 0.2)."""
    dueling: bool = False
    """Dueling heads: Q = V + A - mean(A) (Wang et al. 2016)."""
    weight_decay: float = 0.0
    """L2 penalty ``weight_decay * sum(w ** 2)`` on every Dense kernel of the Q-network (biases free), added to the
    loss; 0 = none (the paper)."""
    iou_weight: float = 0.0
    """Weight of an auxiliary head's squared error in predicting the IoU of the state's window with its target
    (a sigmoid unit on the last hidden layer, trained on every replayed transition); 0 = no head. Its prediction
    is the ``predicted_iou`` detection score."""
    # --- optimisation ---------------------------------------------------------------------------------------
    learning_rate: float = 1e-6
    """Adam's learning rate (paper: 1e-6)."""
    gamma: float = 0.9
    """Discount (paper: 0.9)."""
    replay_size: int = 1000
    """Transitions the agent's own replay memory holds (paper: 1000)."""
    minibatch: int = 100
    """Transitions per update (paper: 100)."""
    learning_starts: int = 100
    """Transitions in memory before the first update."""
    train_every: int = 1
    """One update every this many environment steps (transitions)."""
    target_update_every: int = 0
    """Copy the online network into a target network every this many updates; 0 = no target network (paper)."""
    double_dqn: bool = False
    """Pick the next action with the online network, value it with the target network (needs a target network)."""
    n_step: int = 1
    """Returns over this many steps before bootstrapping (1: the paper's one-step Q-learning). Accumulated per
    episode, so images run in lockstep never mix."""
    # --- demonstrations (DQfD, Hester et al. 2018) -------------------------------------------------------------
    demo_ratio: float = 0.0
    """Share of each minibatch drawn from oracle demonstrations, kept in their own memory; 0 = none."""
    demo_size: int = 5000
    """Transitions the demonstration memory holds."""
    margin: float = 0.8
    """DQfD's large margin: the demonstrated action must beat every other by this much."""
    margin_weight: float = 1.0
    """Weight of the large-margin loss on demonstration transitions (used when demonstrations are on)."""
    bc_epochs: int = 0
    """Behaviour-cloning warm-up: epochs of updates on the demonstrations alone (margin loss plus TD) before the
    epsilon-greedy epochs; needs demonstrations (demo_ratio > 0)."""
    bc_updates_per_epoch: int = 200
    """Updates in one warm-up epoch."""
    bc_minibatch: int = 0
    """Transitions per warm-up update; 0 = ``minibatch``. On a CPU an update of the paper's network costs about
    the same for 32 or 128 transitions (Adam's pass over 26M weights dominates), so fewer, larger warm-up updates
    see as many demonstrations for a fraction of the time."""
    # --- exploration ----------------------------------------------------------------------------------------
    epsilon_start: float = 1.0
    """Exploration rate of the first epoch."""
    epsilon_decay: float = 0.1
    """Subtracted from epsilon after every epoch ..."""
    epsilon_min: float = 0.1
    """... down to this floor, which stays (the 2016 code let epsilon fall to 0)."""
    epochs: int = 50

    def validate(self) -> DQNConfig:
        super().validate()
        for name in (
            "hidden_units",
            "replay_size",
            "minibatch",
            "train_every",
            "n_step",
            "demo_size",
            "bc_updates_per_epoch",
        ):
            require_positive_int(name, getattr(self, name))
        for name in ("learning_starts", "target_update_every", "bc_epochs", "bc_minibatch", "epochs"):
            require_positive_int(name, getattr(self, name), allow_zero=True)
        require_finite("learning_rate", self.learning_rate, low=0.0, low_open=True)
        require_finite("gamma", self.gamma, low=0.0, high=1.0)
        require_finite("dropout", self.dropout, low=0.0, high=1.0, high_open=True)
        require_finite("demo_ratio", self.demo_ratio, low=0.0, high=1.0)
        require_finite("margin", self.margin, low=0.0)
        require_finite("margin_weight", self.margin_weight, low=0.0)
        require_finite("iou_weight", self.iou_weight, low=0.0)
        require_finite("weight_decay", self.weight_decay, low=0.0)
        for name in ("epsilon_start", "epsilon_min"):
            require_finite(name, getattr(self, name), low=0.0, high=1.0)
        require_finite("epsilon_decay", self.epsilon_decay, low=0.0)
        if self.double_dqn and self.target_update_every == 0:
            raise ConfigError(
                "double_dqn needs a target network: set target_update_every > 0 "
                "(--target-update-every N) or turn double_dqn off"
            )
        if self.bc_epochs > 0 and self.demo_ratio == 0:
            raise ConfigError("bc_epochs > 0 needs demonstrations: set demo_ratio > 0 (--demo-ratio)")
        return self

    def epsilon(self, epoch: int) -> float:
        """Exploration rate during 0-based ``epoch``: start, minus decay per finished epoch, floored."""
        return max(self.epsilon_min, self.epsilon_start - self.epsilon_decay * epoch)


@dataclass
class DQNRunConfig(DQNConfig):
    """What a value-based family's run adds to the agent's hyperparameters: how many images run in lockstep, the
    seed, the preset's name and what the run recorded about itself."""

    episode_batch: int = 1
    """Images whose searches run in lockstep in training (one batched backbone and Q-network call per step)."""
    test_batch: int = 32
    """The same for testing (results do not depend on it: the greedy policy is deterministic)."""
    seed: int = 0
    preset: str = "paper"
    extra: dict[str, Any] = field(default_factory=dict)
    """What the run recorded about itself (weights used, data); not a hyperparameter."""

    def validate(self) -> Any:
        super().validate()
        for name in ("episode_batch", "test_batch"):
            require_positive_int(name, getattr(self, name))
        return self


SCORES = (
    "trigger_q",
    "trigger_advantage",
    "trigger_probability",
    "predicted_iou",
    "trigger_order",
    "region_score",
    "auto",
)
"""The detection scores ``score`` may name (``auto``: the one validation chose)."""

REGION_LABELS = ("window", "refined")
"""What the region classifier's labels look at (``region_labels``)."""


@dataclass
class ScoredRunConfig(ConfigBase):
    """A detecting family's detection score and validation split (mixed into the hierarchical and active
    configurations; the trainee's validation is :meth:`zoomrl.experiments.dqn_trainee.DQNTrainee.validation`)."""

    MODEL_FIELDS = ("region_scorer", "box_regression")  # a test reads the run's region models when it trained them

    score: str = "trigger_q"
    """Detection score of a triggered window (``zoomrl.eval.detection.DETECTION_SCORES``): ``trigger_q`` (the
    trigger's Q-value, as the papers), ``trigger_advantage`` (its margin over the best move) or
    ``trigger_probability`` (softmax), ``predicted_iou`` (the IoU head's prediction for the triggered window;
    needs ``iou_weight > 0``), ``trigger_order`` (an image's first trigger above its second, and so on; the
    margin within each rank), or ``region_score`` (the run's region classifier's score of the window:
    ``region_scorer``). Testing reports the AP of every score; this one is the agent's. ``auto``: the
    score that scored best on the run's validation images (``val_fraction``; see ``validation.json``), for the
    checkpoint tested."""
    val_fraction: float = 0.0
    """Share of the training images (chosen by a hash of seed and image id) held out of training as a validation
    set: after every epoch (see ``val_every``) the agent is tested on it with the test protocol; the ``best``
    checkpoint is the epoch with the highest validation AP (area) over the detection scores, and
    ``validation.json`` records each epoch's APs and the chosen score (``score: auto``). 0: no validation
    (``best`` by trigger success)."""
    val_every: int = 1
    """With a validation split, validate every this many epochs, and always at the last (the epochs between have
    no validation AP and cannot be ``best``): validation runs the whole test protocol, which can cost more than
    an epoch of training."""

    region_scorer: bool = False
    """Train a region classifier before the agent (R-CNN's per-class linear detector over the descriptors of boxes
    sampled on the training images: ``zoomrl/agents/region_scorer.py``, ``zoomrl/experiments/region_scoring.py``),
    saved as ``region_scorer.npz`` in the run folder; validation and testing then score every window the agent
    visited with it, which adds the ``region_score`` detection score (``score``; the active family's
    ``aar_score`` too; ``auto`` may choose it)."""
    region_labels: str = "window"
    """What the region classifier (``region_scorer``) learns to call a hit: ``window``, a sampled box at IoU >= 0.5
    with an object (R-CNN's labels); ``refined``, a box that the box regressor (``box_regression``, needed) moves
    to IoU >= 0.5, the regressor being fitted on the other half of the training images
    (:func:`zoomrl.experiments.region_scoring.refined_ious`). A detection reports the moved window, so
    ``refined`` ranks the boxes the evaluation counts; a near miss the regressor rescues is no longer a
    negative."""
    box_regression: bool = False
    """Train a box regressor before the agent (R-CNN's per-class bounding-box regression from a box's descriptor
    to the object it overlaps most, on the same sampled boxes: ``zoomrl/agents/box_regressor.py``), saved as
    ``box_regressor.npz`` in the run folder; validation and testing then report every detection at its window
    moved by the regressor (``refined`` in the records), the agent's windows staying as they were (pictures,
    recall against proposals); ``results.json`` also gives the APs at the unmoved windows (``unrefined_*``)."""

    def validate(self) -> Any:
        super().validate()
        require_choice("score", self.score, SCORES)
        require_choice("region_labels", self.region_labels, REGION_LABELS)
        if self.region_labels == "refined" and not (self.region_scorer and self.box_regression):
            raise ConfigError(
                "region_labels 'refined' labels the region scorer's boxes by the box regressor's moves: it needs "
                "region_scorer and box_regression (--region-scorer --box-regression)"
            )
        require_finite("val_fraction", self.val_fraction, low=0.0, high=0.9)
        require_positive_int("val_every", self.val_every)
        return self


RUN_FIELDS = ("epochs", "test_batch", "preset", "extra")
"""The fields of :class:`DQNRunConfig` a resumed run may change: more epochs, testing's batch, the record."""


def result_fields(config_cls: type, changeable: Sequence[str]) -> tuple[str, ...]:
    """The fields of the dataclass ``config_cls`` that change what training computes, in its order: all but
    ``changeable`` (a resumed run must keep them)."""
    return tuple(f.name for f in dataclasses.fields(config_cls) if f.name not in changeable)


CPU_RECIPE: dict[str, Any] = {
    "learning_rate": 1e-4,
    "minibatch": 32,
    "learning_starts": 64,
    "train_every": 4,
    "target_update_every": 50,
    "double_dqn": True,
}
"""The DQN of both value-based families' 2-core CPU presets (hierarchical ``baseline``/``fast``, active ``fast``):
Adam 1e-4, Double DQN with a target network, minibatch 32 every 4 steps."""

SMOKE_TEST: dict[str, Any] = {
    "learning_rate": 1e-4,
    "epochs": 2,
    "epsilon_decay": 0.5,
    "minibatch": 16,
    "learning_starts": 16,
    "train_every": 4,
    "replay_size": 200,
    "hidden_units": 64,
}
"""The DQN of both families' ``tiny`` presets (seconds: for smoke tests)."""
