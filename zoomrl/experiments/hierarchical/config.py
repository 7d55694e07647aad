"""The hierarchical family's configuration: the task's fields on top of :class:`~zoomrl.agents.dqn.config.DQNConfig`,
with named presets. One source of defaults: the preset, then explicit flags.

``paper`` reproduces Bellver et al. 2016 (sections 3 and 4). ``fast`` is the documented preset that trains on a
2-core CPU within the budget the README states; ``tiny`` is for smoke tests. Everything a run used is saved as
``config.json`` beside its checkpoints, and loading it back refuses unknown keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zoomrl.agents.dqn.config import (
    CPU_RECIPE,
    RUN_FIELDS,
    SCORES,
    SMOKE_TEST,
    DQNRunConfig,
    ScoredRunConfig,
    result_fields,
)
from zoomrl.envs.search_config import ZoomTaskConfig
from zoomrl.vision.feature_config import RUNNING_FIELDS, ZoomFeatureConfig

__all__ = ["PRESETS", "RESULT_FIELDS", "SCORES", "Config", "make_config"]


@dataclass
class Config(ScoredRunConfig, ZoomTaskConfig, ZoomFeatureConfig, DQNRunConfig):
    """The task (:class:`~zoomrl.envs.search_config.ZoomTaskConfig`), the feature model
    (:class:`~zoomrl.vision.feature_config.ZoomFeatureConfig`), the DQN and the run
    (:class:`~zoomrl.agents.dqn.config.DQNRunConfig`), and the detection score with its validation split
    (:class:`~zoomrl.agents.dqn.config.ScoredRunConfig`)."""


RESULT_FIELDS = result_fields(Config, (*RUN_FIELDS, *RUNNING_FIELDS, "only_first_object", "score", "val_every"))
"""Fields that change what training computes: a resumed run must keep them (``epochs`` may grow; the run's and the
feature model's running fields, and testing's searches and detection score, may change)."""

_BASELINE: dict[str, Any] = {**CPU_RECIPE, "epochs": 12, "epsilon_decay": 0.1, "episode_batch": 16}
_TUNED: dict[str, Any] = {**_BASELINE, "n_step": 3, "demo_ratio": 0.25, "bc_epochs": 1, "descriptor_scale": 0.05}
"""Issue 8's tuning of the baseline, shared by ``fast`` and ``fast2`` (with the IoU head, ``iou_weight`` 1)."""

PRESETS: dict[str, dict[str, Any]] = {
    # Paper values (section 4): Adam 1e-6, gamma 0.9, replay 1000, minibatch 100, 50 epochs, epsilon 1 -> 0.1.
    "paper": {},
    # The `fast` preset before the tuning of issue 8 (the README's older raccoon table): the paper's DQN with a
    # larger learning rate, fewer epochs, minibatch 32 every 4 steps and a Double DQN target network.
    "baseline": _BASELINE,
    # The tuned recipe (README, "Tuning"): baseline plus 3-step returns, oracle demonstrations (a quarter of
    # each minibatch, DQfD's large-margin loss), a behaviour-cloning warm-up, descriptors scaled by 0.05, and
    # the IoU head (its prediction is reported as a detection score beside the trigger's Q-value).
    "fast": {
        **_TUNED,
        "iou_weight": 1.0,
        # The trigger's margin over the best move tied with its softmax probability for the best mean AP of the
        # four detection scores on raccoon (README, "Detection score").
        "score": "trigger_advantage",
    },
    # Issue 17's candidate (the lead measures it against `fast`): `fast` plus training that follows the test's
    # protocol (searches on after the last object, where a move earns 0 and a trigger -3; the triggered window
    # painted; negative images included), a trigger taught at IoU 0.65 or the local maximum, exploration that
    # starts low after the warm-up instead of returning to 1.0, a 4x4x512 descriptor (8192 values: 3 times fewer
    # first-layer weights; 2x2x512 gave AP 0.324 against 0.383 over 3 seeds on raccoon, README "fast2"), L2 1e-4
    # on the kernels, horizontal flips, and a validation split of 15 % that picks the best checkpoint and the
    # detection score (`score: auto`). R-CNN's box regressor moves each triggered window onto the object it sees
    # (chosen on the validation images of Pool45 Crops 3/4 on raccoon, 3 seeds: AP 0.771 moved against 0.505
    # unmoved; README "fast2").
    "fast2": {
        **_TUNED,
        "iou_weight": 1.0,
        "train_searches": "test",
        "train_paint": "window",
        "train_negatives": True,
        "nothing_left_reward": 0.0,
        "train_trigger_iou": 0.65,
        "epsilon_start": 0.3,
        "epsilon_decay": 0.02,
        "epsilon_min": 0.1,
        "descriptor_pool": 4,
        "weight_decay": 1e-4,
        "flip_images": True,
        "val_fraction": 0.15,
        "score": "auto",
        "box_regression": True,
    },
    # scripts/demo.sh: the tuned recipe at demo size (minutes on a 2-core CPU for both models); see README.
    "demo": {
        "learning_rate": 1e-4,
        "epochs": 2,
        "minibatch": 32,
        "learning_starts": 32,
        "train_every": 4,
        "target_update_every": 50,
        "double_dqn": True,
        "n_step": 3,
        "demo_ratio": 0.5,
        "bc_epochs": 1,
        # 200 warm-up updates of 128 demonstrations: as many samples as 800 of 32, in about a third of the time.
        "bc_updates_per_epoch": 200,
        "bc_minibatch": 128,
        "descriptor_scale": 0.05,
        "iou_weight": 1.0,
        "epsilon_start": 0.2,
        "epsilon_decay": 0.1,
        "epsilon_min": 0.1,
        "number_of_steps": 8,
        "episode_batch": 16,
        "test_batch": 16,
        # A demo image holds at most two sevens: a third search could only add a false positive.
        "max_searches": 2,
        # Issue 17's training protocol (as in `fast2`): training searches as testing does (a search after the
        # last seven, whose trigger is wrong), paints the triggered window, and teaches the trigger at IoU 0.65
        # or the local maximum; detections scored by the trigger's Q-value. Both chosen on the demo's
        # development set (scripts/make_demo_dataset.py --dev; README "Demo", 3 seeds), then measured on the
        # demo's test split.
        "score": "trigger_q",
        "train_searches": "test",
        "train_paint": "window",
        "train_trigger_iou": 0.65,
    },
    # Seconds: for smoke tests.
    "tiny": {**SMOKE_TEST, "episode_batch": 8, "number_of_steps": 4},
}


def make_config(preset: str = "paper", **overrides: Any) -> Config:
    """A :class:`Config` from a preset name and explicit overrides (None values are ignored)."""
    return Config.from_preset(PRESETS, preset, **overrides)
