"""Every hyperparameter in one documented dataclass, with named presets.

``paper`` reproduces Bellver et al. 2016 (section 3 and 4 of the paper). ``fast`` is the documented preset that
trains within about an hour on a 2-core CPU (see README); it differs only where the paper's values would need
days of CPU time or diverge without them: a larger learning rate, fewer epochs, a smaller minibatch every 4 steps
(an update of the 25112-input network costs about 0.3 s on a 2-core CPU whatever the minibatch), and a Double
DQN target network (without one, Q-values diverged on the learning test). Everything a run used is saved as ``config.json`` beside its checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VARIANTS = ("image_zooms", "pool45_crops")


@dataclass
class Config:
    # --- the task -----------------------------------------------------------------------------------------
    variant: str = "image_zooms"
    """Feature model: ``image_zooms`` (VGG-16 on every region) or ``pool45_crops`` (VGG-16 once per image)."""
    class_object: str = "aeroplane"
    """The class this agent searches for (one agent per class, as in the paper)."""
    scale_subregion: float = 3 / 4
    """Child size relative to its parent: 3/4 overlapping hierarchy (paper default), 1/2 non-overlapping."""
    number_of_steps: int = 10
    """Most actions in one search (moves plus the trigger)."""
    history_length: int = 4
    """How many past actions, one-hot over 6, the state carries (4 x 6 = 24 values)."""
    trigger_iou: float = 0.5
    """IoU at or above which the trigger earns +3 (else -3)."""
    force_trigger: bool = True
    """Training only: take the trigger whenever the window's IoU with a remaining object is >= trigger_iou
    (paper 3.4)."""
    max_searches: int = 3
    """Testing: most searches per image (each restarts from the whole image after painting the last find);
    a search that ends without a trigger also ends the image. Training searches each image once per
    annotated object."""
    only_first_object: bool = False
    """Testing: one search per image, as in the paper's first-object experiments."""

    # --- the DQN --------------------------------------------------------------------------------------------
    descriptor_scale: float = 1.0
    """Multiplies the region descriptor before the Q-network. VGG-16 pool5 values reach the hundreds (std
    about 12 with the HED trunk), which makes early Q-values and losses large; the paper used 1."""
    hidden_units: int = 1024
    dropout: float = 0.2
    learning_rate: float = 1e-6
    gamma: float = 0.9
    replay_size: int = 1000
    minibatch: int = 100
    learning_starts: int = 100
    """Transitions in memory before the first update."""
    train_every: int = 1
    """One update every this many environment steps (transitions)."""
    epsilon_start: float = 1.0
    epsilon_decay: float = 0.1
    """Subtracted from epsilon after every epoch ..."""
    epsilon_min: float = 0.1
    """... down to this floor, which stays (the 2016 code let epsilon fall to 0)."""
    epochs: int = 50
    target_update_every: int = 0
    """Copy the online network into a target network every this many updates; 0 = no target network (paper)."""
    double_dqn: bool = False
    """With a target network: pick the next action with the online network (Double DQN)."""

    # --- running --------------------------------------------------------------------------------------------
    episode_batch: int = 1
    """Images whose episodes run in lockstep (one batched backbone and Q-network call per step)."""
    test_batch: int = 32
    """The same for testing (results do not depend on it: the greedy policy is deterministic)."""
    backbone_batch: int = 16
    """Most windows per backbone call."""
    cache_mb: float = 3072
    """Memory for cached descriptors and maps."""
    feature_cache: str | None = None
    """Folder of an HDF5 feature cache reused across runs (None: memory only)."""
    weights: str = "auto"
    """Backbone weights: auto, imagenet, hed, none or a path (see zoomrl/vision/backbone.py)."""
    pool45_max_side: int = 500
    """Pool45 Crops: images with a longer side are resized down before the single VGG-16 pass."""
    seed: int = 0
    preset: str = "paper"
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> "Config":
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, received '{self.variant}'")
        if not 0.0 < self.scale_subregion < 1.0:
            raise ValueError(f"scale_subregion must lie in (0, 1), received {self.scale_subregion}")
        for name in ("number_of_steps", "epochs", "replay_size", "minibatch", "train_every", "episode_batch",
                     "test_batch", "backbone_batch", "max_searches"):
            value = getattr(self, name)
            if int(value) < 1 and not (name == "epochs" and value == 0):
                raise ValueError(f"{name} must be a positive integer, received {value}")
        if not 0.0 <= self.epsilon_min <= 1.0:
            raise ValueError(f"epsilon_min must lie in [0, 1], received {self.epsilon_min}")
        return self

    def epsilon(self, epoch: int) -> float:
        """Exploration rate during 0-based ``epoch``: start, minus decay per finished epoch, floored."""
        return max(self.epsilon_min, self.epsilon_start - self.epsilon_decay * epoch)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        from zoomrl.core.io import write_json

        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: Path) -> "Config":
        data = json.loads(Path(path).read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


PRESETS: dict[str, dict[str, Any]] = {
    # Paper values (section 4): Adam 1e-6, gamma 0.9, replay 1000, minibatch 100, 50 epochs, epsilon 1 -> 0.1.
    "paper": {},
    # About an hour on a 2-core CPU for raccoon trainval (160 images) plus its test split; see README.
    "fast": {
        "learning_rate": 1e-4,
        "epochs": 12,
        "minibatch": 32,
        "learning_starts": 64,
        "train_every": 4,
        "target_update_every": 50,
        "double_dqn": True,
        "epsilon_decay": 0.1,
        "episode_batch": 16,
    },
    # Seconds: for smoke tests and the demo command's first look.
    "tiny": {
        "learning_rate": 1e-4,
        "epochs": 2,
        "minibatch": 16,
        "learning_starts": 16,
        "train_every": 4,
        "replay_size": 200,
        "hidden_units": 64,
        "episode_batch": 8,
        "number_of_steps": 4,
        "epsilon_decay": 0.5,
    },
}


def make_config(preset: str = "paper", **overrides: Any) -> Config:
    """A :class:`Config` from a preset name and explicit overrides (None values are ignored)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset '{preset}'; expected one of {sorted(PRESETS)}")
    values = dict(PRESETS[preset])
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["preset"] = preset
    return Config(**values).validate()
