"""The active family's configuration: the task's fields on top of :class:`~zoomrl.agents.dqn.config.DQNConfig`,
with named presets (the preset, then explicit flags; saved as ``config.json`` with every run).

``paper`` follows Caicedo and Lazebnik 2015: 9 actions with alpha 0.2, 10 past actions in the state, rewards +-1
and +-3 with tau 0.6 in training and 0.5 in testing, guided exploration, 15 epochs with epsilon falling linearly
from 1.0 to 0.1 over the first 5, replay 1000, minibatch 100, gamma 0.9, 200 test steps per image with restarts
after 40. ``fast`` fits a 2-core CPU (see docs/active.md); ``tiny`` is for smoke tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zoomrl.agents.dqn.config import CPU_RECIPE, RUN_FIELDS, SMOKE_TEST, DQNRunConfig, ScoredRunConfig, result_fields
from zoomrl.core.config import ConfigError, require_choice, require_finite
from zoomrl.envs.search_config import ActiveTaskConfig
from zoomrl.eval.proposals import ATTENDED_SCORES
from zoomrl.vision.feature_config import RUNNING_FIELDS, BoxFeatureConfig

AAR_SCORES = (*ATTENDED_SCORES, "auto")
"""The scores ``aar_score`` may name (:data:`zoomrl.eval.proposals.ATTENDED_SCORES`; ``auto``: the one validation
chose)."""

ROI_DESCRIPTOR_SCALE = 0.1
"""The ``fast_roi`` preset's descriptor scale: RoIAlign ``block5_conv3`` values (HED weights) on raccoon images
have a standard deviation of about 6.5 (40 random boxes on each of 5 raccoon test images); times this, about
0.65, as the hierarchical family's pool5 times 0.05 (standard deviation about 12)."""


@dataclass
class Config(ScoredRunConfig, ActiveTaskConfig, BoxFeatureConfig, DQNRunConfig):
    """The task (:class:`~zoomrl.envs.search_config.ActiveTaskConfig`), the feature model
    (:class:`~zoomrl.vision.feature_config.BoxFeatureConfig`), the DQN and the run
    (:class:`~zoomrl.agents.dqn.config.DQNRunConfig`), the detection score of terminal regions with its
    validation split (:class:`~zoomrl.agents.dqn.config.ScoredRunConfig`), and the all-attended-regions set's
    suppression and score."""

    aar_nms: float = 0.3
    """All attended regions: greedy non-maximum suppression at this IoU per image before the AP (0: none)."""
    aar_vote: float = 0.0
    """All attended regions: box voting after the suppression (Gidaris and Komodakis 2015; 0: none): each kept box
    becomes the mean of every attended box of its image with IoU >= this with it, weighted by the logistic of each
    box's score (:func:`zoomrl.eval.proposals.box_vote`); its score stays its own."""
    aar_score: str = "trigger_q"
    """Score of each attended box in the all-attended-regions (AAR) set, as if the agent had triggered there:
    ``trigger_q`` (the trigger's Q-value at the box, the paper's), ``trigger_advantage`` (its margin over the best
    other action), ``predicted_iou`` (the IoU head's prediction for the box; needs a network trained with
    ``iou_weight > 0``) or ``auto`` (the one with the best AAR AP on the run's validation images, ``val_fraction``,
    for the checkpoint tested, as ``score: auto`` for terminal regions). Testing reports the AAR AP under every
    score (``aar_by_score``); this one is the agent's. ``validation.json`` records each validated epoch's AAR APs
    and choice (``aar_ap_by_score``, ``aar_score``), and the best epoch's. One of :data:`AAR_SCORES`."""

    def validate(self) -> Config:
        super().validate()
        require_finite("aar_nms", self.aar_nms, low=0.0, high=1.0)
        require_finite("aar_vote", self.aar_vote, low=0.0, high=1.0)
        require_choice("aar_score", self.aar_score, AAR_SCORES)
        if self.iou_weight > 0 and self.features == "scratch":
            raise ConfigError(
                "iou_weight > 0 (the IoU head) needs the MLP Q-network of vgg, roi or clip features; "
                "--features scratch trains a CNN (zoomrl/agents/dqn/scratch.py) that has no IoU head: "
                "drop --iou-weight or choose other --features"
            )
        if self.region_scorer and self.features == "scratch":
            raise ConfigError(
                "region_scorer needs box descriptors (vgg, roi or clip features); --features scratch describes a "
                "box by its pixels: drop --region-scorer or choose other --features"
            )
        if self.box_regression and self.features == "scratch":
            raise ConfigError(
                "box_regression needs box descriptors (vgg, roi or clip features); --features scratch describes a "
                "box by its pixels: drop --box-regression or choose other --features"
            )
        return self


TEST_FIELDS = (
    "test_steps",
    "test_trigger_iou",
    "restart_scale",
    "test_restart_steps",
    "test_epsilon",
    "avoid_revisits",
    "revisit_iou",
    "revisit_scope",
    "aar_nms",
    "aar_vote",
    "aar_score",
    "score",
    "val_every",
)
RESULT_FIELDS = result_fields(Config, (*RUN_FIELDS, *RUNNING_FIELDS, *TEST_FIELDS))
"""Fields that change what training computes: a resumed run must keep them (``epochs`` may grow; the run's and the
feature model's running fields, and testing's budget, threshold, restarts, policy and suppression, may change)."""

PRESETS: dict[str, dict[str, Any]] = {
    # Caicedo and Lazebnik 2015: 15 epochs, epsilon 1.0 -> 0.1 linearly over the first 5 (1.0, 0.82, 0.64, 0.46,
    # 0.28, then 0.1); the DQN defaults (replay 1000, minibatch 100, gamma 0.9, 1024-1024 MLP, dropout 0.2).
    "paper": {"epochs": 15, "epsilon_decay": 0.18},
    # A 2-core CPU: Adam 1e-4, Double DQN with a target network, minibatch 32 every 4 steps, 16 images in lockstep.
    "fast": {**CPU_RECIPE, "epochs": 15, "epsilon_decay": 0.18, "episode_batch": 16},
    # Issue 18: the fast preset on RoIAlign features (one VGG-16 pass per image and per trigger), with the box's
    # geometry and the step count in the state, descriptors scaled to about unit spread, exploration that also
    # tries wrong triggers, oracle demonstrations with DQfD's large-margin loss and a behaviour-cloning warm-up, and
    # a test policy that never revisits a box within a search; the detection score chosen on validation images.
    "fast_roi": {
        **CPU_RECIPE,
        "epochs": 15,
        "epsilon_decay": 0.18,
        "episode_batch": 16,
        "features": "roi",
        "descriptor_scale": ROI_DESCRIPTOR_SCALE,
        "state_geometry": True,
        "state_steps": True,
        "explore_trigger": 0.1,
        "demo_ratio": 0.25,
        "bc_epochs": 1,
        "avoid_revisits": True,
        # Revisits counted over the image's earlier searches too: chosen on the 3 seeds' validation images (AAR AP
        # 0.561 -> 0.582, recall at 50 boxes 0.908 -> 0.921; docs/active.md, "--revisit-scope").
        "revisit_scope": "image",
        # The detection score, chosen on a validation split of 15 % of trainval tested every 5 epochs (and at the
        # last): on seed 0 without it the trigger's Q-value ranked the terminal regions worse than the whole image.
        "val_fraction": 0.15,
        "val_every": 5,
        "score": "auto",
        # The paper scores attended regions with a detector: R-CNN's linear classifier on the box descriptors,
        # chosen (or not) by validation for both sets.
        "region_scorer": True,
        "aar_score": "auto",
        # R-CNN's box regression moves the reported boxes: on the 3 seeds' validation images (best checkpoints)
        # the terminal regions' AP rose on every seed (0.404 -> 0.629, 0.631 -> 0.754, 0.648 -> 0.860), the
        # attended regions' on two (docs/active.md, "The box regressor").
        "box_regression": True,
        # Box voting over the attended boxes after the suppression: chosen on the 3 seeds' validation images (best
        # checkpoints; AAR AP by the region score 0.635 -> 0.702; docs/active.md, "Box voting, earlier restarts").
        "aar_vote": 0.5,
        # A test search without a trigger restarts after 10 actions, not 40: chosen on the 3 seeds' validation images
        # by their AAR AP (region score, voting) among restarts after 20, 10 and 5 (0.736, 0.806, 0.796; TR and
        # recall at 50 within 0.02 of restart 20's); docs/active.md, "Earlier restarts chosen by AAR".
        "test_restart_steps": 10,
    },
    # Seconds: for smoke tests.
    "tiny": {**SMOKE_TEST, "episode_batch": 8, "test_batch": 8, "number_of_steps": 4, "test_steps": 10},
}


def make_config(preset: str = "paper", **overrides: Any) -> Config:
    """A :class:`Config` from a preset name and explicit overrides (None values are ignored)."""
    return Config.from_preset(PRESETS, preset, **overrides)
