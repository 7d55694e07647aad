"""The ``glimpse`` family's configuration: one :class:`GlimpseConfig`, presets ``paper``, ``fast``, ``fast2`` and
``tiny``.

A preset's values depend on the task: :func:`make_config` starts from ``PRESETS[preset]``, applies
``TASK_PRESETS[task][preset]``, then every flag given on the command line.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from zoomrl.agents.ram.config import RamConfig
from zoomrl.core.config import ConfigError, require_choice, require_positive_int
from zoomrl.data.splits import EVAL_SPLITS, TASKS, TaskDataConfig

MODELS = ("ram", "random", "cnn", "mlp")


@dataclasses.dataclass
class GlimpseConfig(TaskDataConfig, RamConfig):
    """Every setting of a ``glimpse`` run (saved as ``config.json`` in each model's run folder): RAM's and the
    baselines' hyperparameters (:class:`RamConfig`), the task and its data (:class:`TaskDataConfig`), then the
    models and the schedule."""

    preset: str = "fast"
    models: str = "ram,random,cnn,mlp"
    """Comma-separated models to train/test: ram (learned glimpses), random (RAM with uniformly random glimpse
    locations), cnn and mlp (whole-image baselines)."""
    batch_size: int = 64
    epochs: int = 40
    """Epochs of RAM (ram, random) in the whole run, each a pass over that epoch's canvases (a resumed run: the
    total, not the epochs still to go)."""
    baseline_epochs: int = 10
    """Epochs of the whole-image baselines (cnn, mlp)."""
    mc_samples: int = 10
    """Paths sampled per test image for the Monte-Carlo evaluation."""
    eval_split: str = "test"
    """What ``glimpse test`` measures: ``test``, or ``val`` (the held-out training digits of ``val_fraction``,
    where choices are made)."""
    draw_max: int = 16
    """--bool-draw draws the first draw_max test images."""

    def model_list(self) -> list[str]:
        return [m.strip() for m in self.models.split(",") if m.strip()]

    def validate(self) -> GlimpseConfig:
        super().validate()
        models = self.model_list()
        if not models:
            raise ConfigError("models must name at least one of ram, random, cnn, mlp; received ''")
        for m in models:
            require_choice("models", m, MODELS)
        if len(set(models)) != len(models):
            raise ConfigError(f"models must not repeat a model; received {self.models!r}")
        require_choice("eval_split", self.eval_split, EVAL_SPLITS)
        if self.eval_split == "val" and not self.val_fraction:
            raise ConfigError("eval_split val needs a run trained with a validation split (val_fraction > 0)")
        for name in ("batch_size", "mc_samples"):
            require_positive_int(name, getattr(self, name))
        for name in ("epochs", "baseline_epochs", "draw_max"):
            require_positive_int(name, getattr(self, name), allow_zero=True)
        return self


# A preset names only where it departs from the dataclass defaults (the fields above, RamConfig's and TaskDataConfig's),
# so that a default lives in one place. `fast` fits the 20-minute budget on a 2-core CPU; its LSTM core: at 1500
# updates, 15.0 % Monte-Carlo test error against 20.6 % for the ReLU core.
FAST: dict[str, Any] = {"core": "lstm"}

PRESETS: dict[str, dict[str, Any]] = {
    # The paper's values (Mnih et al. 2014; the variant for regression): the defaults' 60x60 cluttered canvases,
    # 12x12 retina, 3 scales, fc glimpse network 128/128/256 and ReLU core 256; SGD with momentum; long training.
    "paper": {
        "loc_std": 0.22,
        "optimizer": "sgd",
        "learning_rate": 0.01,
        "batch_size": 20,
        "train_size": 60000,
        "epochs": 200,
        "baseline_epochs": 50,
    },
    "fast": FAST,
    # `fast` with issue 19's fixes: the first glimpse at the centre (and the mean path from there: deterministic),
    # log pi of the unclipped samples, and twice the updates (8000); see TASK_PRESETS for the photos' settings.
    "fast2": {**FAST, "epochs": 80, "first_location": "centre", "logp_unclipped": True},
    # Seconds, for tests.
    "tiny": {
        "glimpses": 3,
        "glimpse_size": 8,
        "scales": 2,
        "glimpse_hidden": 16,
        "loc_hidden": 16,
        "glimpse_units": 32,
        "core_units": 32,
        "batch_size": 16,
        "train_size": 32,
        "test_size": 16,
        "epochs": 2,
        "baseline_epochs": 1,
        "baseline_hidden": 16,
        "mc_samples": 2,
        "draw_max": 2,
        "xla": False,
        "eager": True,
    },
}

TASK_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # Digits: the classifier also fits the deterministic mean path the test reports, and RAM (and random glimpses)
    # are measured at the moving average of their weights (each chosen on the validation split of the training
    # digits: docs/glimpse.md, "Training on the mean path" and "Averaged weights").
    "classify": {"fast2": {"mean_path_weight": 1.0, "weight_average": 0.999}},
    "regress": {
        "paper": {"glimpses": 8, "glimpse_net": "conv", "models": "ram,cnn"},
        "fast": {"models": "ram,cnn"},
        # Photos: the conv glimpse network, 8 glimpses, flips and shifts of up to 8 px (128 px canvases); batches of
        # 32 (5 updates an epoch on raccoon's 160 photos, none left out); 40 epochs of digit canvases (8000 updates).
        "fast2": {
            "models": "ram,cnn",
            "glimpses": 8,
            "glimpse_net": "conv",
            "augment_flip": True,
            "augment_shift": 8,
            "batch_size": 32,
            "epochs": 40,
        },
        "tiny": {"models": "ram,cnn"},
    },
}


def preset_values(preset: str, task: str) -> dict[str, Any]:
    """The values a preset sets for ``task`` (its own, then the task's)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset '{preset}'; expected one of {', '.join(sorted(PRESETS))}")
    require_choice("task", task, TASKS)
    return {**PRESETS[preset], **TASK_PRESETS[task].get(preset, {}), "task": task}


def make_config(preset: str, task: str = "classify", **overrides: Any) -> GlimpseConfig:
    """The preset's values for ``task``, then every override that is not None; validated."""
    return GlimpseConfig.from_preset({preset: preset_values(preset, task)}, preset, **overrides)
