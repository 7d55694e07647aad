"""The active family's configuration: the task's fields on top of :class:`~zoomrl.agents.dqn.config.DQNConfig`,
with named presets (the preset, then explicit flags; saved as ``config.json`` with every run).

``paper`` follows Caicedo and Lazebnik 2015: 9 actions with alpha 0.2, 10 past actions in the state, rewards +-1
and +-3 with tau 0.6 in training and 0.5 in testing, guided exploration, 15 epochs with epsilon falling linearly
from 1.0 to 0.1 over the first 5, replay 1000, minibatch 100, gamma 0.9, 200 test steps per image with restarts
after 40. ``fast`` fits a 2-core CPU (see docs/active.md); ``tiny`` is for smoke tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zoomrl.agents.dqn.config import CPU_RECIPE, SMOKE_TEST, DQNConfig
from zoomrl.agents.dqn.config import RESULT_FIELDS as DQN_RESULT_FIELDS
from zoomrl.core.config import ConfigError, require_choice, require_finite, require_positive_int

FEATURES = ("vgg", "scratch", "roi", "clip")
ROI_DESCRIPTOR_SCALE = 0.1
"""The ``fast_roi`` preset's descriptor scale: RoIAlign ``block5_conv3`` values (HED weights) on raccoon images
have a standard deviation of about 6.5 (40 random boxes on each of 5 raccoon test images); times this, about
0.65, as the hierarchical family's pool5 times 0.05 (standard deviation about 12)."""


@dataclass
class Config(DQNConfig):
    # --- the task -----------------------------------------------------------------------------------------
    features: str = "vgg"
    """``vgg``: VGG-16 ``block5_pool`` of the box with context (the Image Zooms feature model and its cache);
    ``scratch``: the box's pixels at 84x84 through a CNN trained end to end (zoomrl/agents/dqn/scratch.py);
    ``roi``: VGG-16 once per (masked) image to ``block5_conv3``, each box by RoIAlign to 7x7x512
    (zoomrl/vision/roi.py); ``clip``: a CLIP image encoder's embedding of the box (zoomrl/vision/clip.py)."""
    class_object: str = "seven"
    """The class this agent searches for (one agent per class, as in the paper): the embedded demo set's
    (``aeroplane`` in the paper's Pascal VOC experiments)."""
    alpha: float = 0.2
    """Moves shift by alpha times the box's side; scalings multiply sides by 1 +- alpha."""
    history_length: int = 10
    """Past actions, one-hot, in the state (10 x 9 = 90 values)."""
    number_of_steps: int = 40
    """Most actions in one search, training and testing (a test search restarts after this many)."""
    test_steps: int = 200
    """Testing: most actions per image, over all its searches."""
    trigger_iou: float = 0.6
    """Training: the trigger earns +3 at IoU >= this, else -3 (paper: 0.6)."""
    test_trigger_iou: float = 0.5
    """Testing: the same threshold for the rewards and logs (paper: 0.5, the evaluation's)."""
    context: int = 16
    """Pixels of context around the box at the 224 px warped size (R-CNN padding)."""
    restart_scale: float = 0.75
    """Testing: later searches start from a box of this share of the image at the four corners in turn."""
    cross_width: float = 0.2
    """Inhibition of return: each arm of the black cross is this share of the box's side thick."""
    fine_smaller: bool = False
    """A tenth action: a finer smaller (sides times 1 - fine_alpha)."""
    fine_alpha: float = 0.05
    continuous_trigger: bool = False
    """Trigger reward 3..6 rising with the IoU above the threshold, -3..-1 below it (else +-3)."""
    guided_exploration: bool = True
    """Exploring, draw among the actions with a positive reward (all when none has one); off: uniform."""
    descriptor_scale: float = 1.0
    """Multiplies the region descriptor before the Q-network (the hierarchical family uses 0.05 on pool5, whose
    values have a standard deviation of about 12, so that they do not drown out the 0/1 history)."""
    state_geometry: bool = False
    """Append the box's normalised geometry (x1 / W, y1 / H, w / W, h / H) to the state."""
    state_steps: bool = False
    """Append the search's step count (actions taken over number_of_steps) to the state."""
    explore_trigger: float = 0.0
    """Exploring, an action is the trigger with this probability wherever the box is (else the guided or uniform
    draw): wrong triggers (-3) then reach the replay memory while epsilon is high, not only through greedy play.
    0: the paper's guided exploration, which tries the trigger only when it pays."""
    avoid_revisits: bool = False
    """Testing: the greedy policy never takes a move to a box already visited in this search (nor a move that
    leaves the box where it is); it takes the best of the other actions. The trigger is always allowed, so a
    search whose every move is a revisit ends by triggering. Off: the paper's plain greedy policy."""
    roi_max_side: int = 500
    """``roi``: images whose longer side exceeds this are resized down before the backbone pass."""
    clip_preset: str = "clip_vit_base_patch32"
    """``clip``: the keras-hub CLIP preset whose image encoder describes the boxes."""
    aar_nms: float = 0.3
    """All attended regions: greedy non-maximum suppression at this IoU per image before the AP (0: none)."""
    # --- running --------------------------------------------------------------------------------------------
    episode_batch: int = 1
    """Images whose searches run in lockstep in training."""
    test_batch: int = 32
    """The same for testing (the greedy policy is deterministic: results do not depend on it)."""
    backbone_batch: int = 16
    cache_mb: float = 3072
    feature_cache: str | None = None
    """Folder of an HDF5 feature cache reused across runs (None: memory only). One process at a time."""
    weights: str = "auto"
    """Backbone weights: auto, imagenet, hed, none or a path (see zoomrl/vision/backbone.py)."""
    seed: int = 0
    preset: str = "paper"
    extra: dict[str, Any] = field(default_factory=dict)
    """What the run recorded about itself (weights used, data); not a hyperparameter."""

    def validate(self) -> Config:
        super().validate()
        require_choice("features", self.features, FEATURES)
        for name in (
            "history_length",
            "number_of_steps",
            "test_steps",
            "episode_batch",
            "test_batch",
            "backbone_batch",
            "roi_max_side",
        ):
            require_positive_int(name, getattr(self, name))
        require_positive_int("context", self.context, allow_zero=True)
        if self.context * 2 >= 224:
            raise ConfigError(f"context must be below 112 pixels, received {self.context}")
        require_finite("alpha", self.alpha, low=0.0, high=1.0, low_open=True, high_open=True)
        require_finite("fine_alpha", self.fine_alpha, low=0.0, high=1.0, low_open=True, high_open=True)
        for name in ("trigger_iou", "test_trigger_iou", "restart_scale"):
            require_finite(name, getattr(self, name), low=0.0, high=1.0, low_open=True)
        require_finite("cross_width", self.cross_width, low=0.0, high=1.0)
        require_finite("aar_nms", self.aar_nms, low=0.0, high=1.0)
        require_finite("descriptor_scale", self.descriptor_scale, low=0.0, low_open=True)
        require_finite("explore_trigger", self.explore_trigger, low=0.0, high=1.0)
        if not isinstance(self.clip_preset, str) or not self.clip_preset.strip():
            raise ConfigError(f"clip_preset must be a keras-hub preset name or path, received {self.clip_preset!r}")
        require_finite("cache_mb", self.cache_mb, low=0.0)
        return self

    @property
    def num_actions(self) -> int:
        return 10 if self.fine_smaller else 9

    def env_kwargs(self, training: bool) -> dict[str, Any]:
        """The :class:`~zoomrl.envs.active.ActiveEnv` keyword arguments of a training or testing run."""
        return dict(
            training=training,
            max_steps=self.number_of_steps,
            max_total_steps=self.test_steps,
            history_length=self.history_length,
            trigger_iou=self.trigger_iou if training else self.test_trigger_iou,
            fine_smaller=self.fine_smaller,
            continuous_trigger=self.continuous_trigger,
            alpha=self.alpha,
            fine_alpha=self.fine_alpha,
            restart_scale=self.restart_scale,
            cross_width=self.cross_width,
            context=self.context,
            state_geometry=self.state_geometry,
            state_steps=self.state_steps,
        )


RESULT_FIELDS = (
    "features",
    "class_object",
    "alpha",
    "history_length",
    "number_of_steps",
    "trigger_iou",
    "context",
    "cross_width",
    "fine_smaller",
    "fine_alpha",
    "continuous_trigger",
    "guided_exploration",
    "descriptor_scale",
    "state_geometry",
    "state_steps",
    "explore_trigger",
    "roi_max_side",
    "clip_preset",
    *DQN_RESULT_FIELDS,
    "episode_batch",
    "seed",
    "weights",
)
"""Fields that change what training computes: a resumed run must keep them (``epochs`` may grow)."""

MODEL_FIELDS = (
    "features",
    "hidden_units",
    "dropout",
    "dueling",
    "history_length",
    "descriptor_scale",
    "fine_smaller",
    "fine_alpha",
    "alpha",
    "context",
    "cross_width",
    "state_geometry",
    "state_steps",
    "roi_max_side",
    "clip_preset",
)
"""What a trained Q-network fixes: testing takes these from the run's config.json."""

PRESETS: dict[str, dict[str, Any]] = {
    # Caicedo and Lazebnik 2015: 15 epochs, epsilon 1.0 -> 0.1 linearly over the first 5 (1.0, 0.82, 0.64, 0.46,
    # 0.28, then 0.1); the DQN defaults (replay 1000, minibatch 100, gamma 0.9, 1024-1024 MLP, dropout 0.2).
    "paper": {"epochs": 15, "epsilon_decay": 0.18},
    # A 2-core CPU: Adam 1e-4, Double DQN with a target network, minibatch 32 every 4 steps, 16 images in lockstep.
    "fast": {**CPU_RECIPE, "epochs": 15, "epsilon_decay": 0.18, "episode_batch": 16},
    # Issue 18: the fast preset on RoIAlign features (one VGG-16 pass per image and per trigger), with the box's
    # geometry and the step count in the state, descriptors scaled to about unit spread, exploration that also
    # tries wrong triggers, oracle demonstrations with DQfD's large-margin loss and a behaviour-cloning warm-up, and
    # a test policy that never revisits a box within a search.
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
    },
    # Seconds: for smoke tests.
    "tiny": {**SMOKE_TEST, "episode_batch": 8, "test_batch": 8, "number_of_steps": 4, "test_steps": 10},
}


def make_config(preset: str = "paper", **overrides: Any) -> Config:
    """A :class:`Config` from a preset name and explicit overrides (None values are ignored)."""
    return Config.from_preset(PRESETS, preset, **overrides)
