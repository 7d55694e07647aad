"""The patchdrop family's command line: ``python -m zoomrl patchdrop train|test [--data ...] [--stage ...]``.

Training flags are generated from :class:`PatchDropConfig` (``--help`` shows the value in force). ``test`` reads
the run's saved configuration: only :data:`TEST_FIELDS` (``--eval-batch``, ``--random-draws``, ``--draw-max``) may
change; ``--seed`` seeds the test's own randomness (the random baselines; default: the run's seed), and a
``--preset`` or ``--data`` other than the run's is an error. ``--dataset``, ``--max-pictures`` and ``--sigma`` are
the old names of ``--data``, ``--draw-max`` and ``--finetune-sigma`` (still accepted)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoomrl.agents.patchdrop.config import EPOCH_FIELDS, STAGES, epoch_overrides
from zoomrl.data.patch_digits import DATASETS
from zoomrl.experiments.common import add_common_flags, positive_int, saved_run_config
from zoomrl.experiments.flags import add_config_flags, add_renamed_field, renamed_flag
from zoomrl.experiments.patchdrop.config import PRESETS, TEST_FIELDS, PatchDropConfig, make_config

COMMANDS = ("train", "test")
DEFAULTS: dict[str, Any] = {
    "PRESET": "fast",
    "MODEL_DIR": "models_patchdrop",
    "OUTPUT_DIR": "results_patchdrop",
    "SEED": 0,
}
STAGE_CHOICES = ("1", "2", "3", "4", *STAGES)
NOT_FLAGS = {"preset", "dataset", "seed", "sigma_curve", "max_pictures", *EPOCH_FIELDS.values()}
"""Fields with a flag of their own (``--preset``, ``--data``, ``--seed``, ``--sigma-curve``, ``--draw-max``), and
the epoch fields (from ``--epochs`` and ``--stage-epochs``)."""
TEST_HELP = {"preset": "the run's preset (another is an error)", "seed": "seeds the random baselines (default: run's)"}


def build_parser(command: str, constants: Mapping[str, Any] | None = None) -> argparse.ArgumentParser:
    c = {**DEFAULTS, **(constants or {})}
    p = argparse.ArgumentParser(
        description=f"{command.title()} PatchDrop (Uzkent and Ermon 2020): a policy keeps a few of 16 patches at "
        "high resolution."
    )
    add_common_flags(p, command, PRESETS, c if command == "train" else {**c, "PRESET": None, "SEED": None})
    add = p.add_argument
    data_help = "digits (offline canvases), cifar10, cifar100 (keras.datasets: a download) (default: preset's/run's)"
    add_renamed_field(p, "dataset", data_help, choices=DATASETS)
    draw_help = "--bool-draw: most pictures (default: the preset's)"
    add_renamed_field(p, "max_pictures", draw_help, dest="draw_max", type=positive_int)
    if command == "test":  # the run's values stand unless given
        for action in p._actions:
            action.help = TEST_HELP.get(action.dest, action.help)
        add_config_flags(p, PatchDropConfig, [f for f in TEST_FIELDS if f != "max_pictures"], PRESETS, c["PRESET"])
        return p
    stage_help = "train only this stage (1 classifiers, 2 policy pre-training, 3 fine-tuning, 4 two-stream), from "
    add("--stage", choices=STAGE_CHOICES, default=None, help=stage_help + "the end of the one before (default: all)")
    add("--sigma-curve", default=None, metavar="S1,S2,...", help="stage 2: one policy per penalty (default: preset's)")
    epochs_help = "epochs of each stage (N: of every stage, or of --stage's); --epochs: the run's, shared as the preset"
    add("--stage-epochs", default=None, metavar="N|S1,S2,S3[,S4]", help=epochs_help)
    names = [f.name for f in dataclasses.fields(PatchDropConfig) if f.name not in NOT_FLAGS]
    add_config_flags(p, PatchDropConfig, names, PRESETS, c["PRESET"])
    renamed_flag(p, "--sigma", "--finetune-sigma", "finetune_sigma", type=float)
    return p


def stage_name(text: str | None) -> str | None:
    return STAGES[int(text) - 1] if text and text.isdigit() else text


def make_train_config(args: argparse.Namespace) -> PatchDropConfig:
    try:
        sigmas = None if args.sigma_curve is None else [float(v) for v in args.sigma_curve.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--sigma-curve expects numbers separated by commas, received {args.sigma_curve!r}") from None
    over = {f.name: getattr(args, f.name) for f in dataclasses.fields(PatchDropConfig) if f.name not in NOT_FLAGS}
    over.update(dataset=args.dataset, seed=args.seed, sigma_curve=sigmas, max_pictures=args.draw_max)
    over.update(epoch_overrides(make_config(args.preset), args.epochs, args.stage_epochs, stage_name(args.stage)))
    return make_config(args.preset, **over)


def saved_config(model_dir: Path, args: argparse.Namespace) -> PatchDropConfig:
    """The run's saved configuration with the test settings of the command line (see the module docstring)."""
    hint = f"python -m zoomrl patchdrop train --model-dir {model_dir}"
    fixed = {"data": "dataset", "preset": "preset"}
    cfg = saved_run_config(PatchDropConfig, model_dir / "config.json", args, fixed, (*TEST_FIELDS, "seed"), hint)
    return cfg.replace(max_pictures=args.draw_max) if args.draw_max else cfg


def run(command: str, args: argparse.Namespace) -> None:
    if command not in COMMANDS:
        raise ValueError(f"patchdrop takes a command, one of {', '.join(COMMANDS)}; received {command!r}")
    model_dir = Path(args.model_dir or DEFAULTS["MODEL_DIR"])
    log = print  # summary lines; --quiet only hides the progress bars
    if command == "train":
        from zoomrl.experiments.patchdrop.train import train

        cfg = make_train_config(args)
        train(cfg, model_dir, stage_name(args.stage), args.resume, args.keep_checkpoints, args.quiet, log)
    else:
        from zoomrl.experiments.patchdrop.test import run_test

        cfg = saved_config(model_dir, args)
        run_test(cfg, model_dir, Path(args.output_dir or DEFAULTS["OUTPUT_DIR"]), args.bool_draw, args.quiet, log)
