"""The patchdrop family's command line: ``python -m zoomrl patchdrop train|test [--data ...] [--stage ...]``.

``--dataset`` and ``--max-pictures`` are the old names of ``--data`` and ``--draw-max`` (still accepted)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoomrl.experiments.common import add_common_flags, positive_int
from zoomrl.experiments.flags import renamed_flag

COMMANDS = ("train", "test")
DEFAULTS: dict[str, Any] = {
    "PRESET": "fast",
    "MODEL_DIR": "models_patchdrop",
    "OUTPUT_DIR": "results_patchdrop",
    "SEED": 0,
}
STAGE_CHOICES = ("1", "2", "3", "4", "classifiers", "pretrain", "finetune", "two_stream")


def build_parser(command: str, constants: Mapping[str, Any] | None = None) -> argparse.ArgumentParser:
    from zoomrl.experiments.patchdrop.config import DATASETS, PRESETS

    c = {**DEFAULTS, **(constants or {})}
    what = "Train" if command == "train" else "Test"
    p = argparse.ArgumentParser(
        description=f"{what} PatchDrop (Uzkent and Ermon 2020): a policy keeps a few of 16 patches at high resolution."
    )
    add_common_flags(p, command, PRESETS, c)
    add = p.add_argument
    add(
        "--data",
        dest="dataset",
        choices=DATASETS,
        default=None,
        help="digits (offline canvases), cifar10 or cifar100 (keras.datasets, a download) (default: digits; test: "
        "the trained one)",
    )
    renamed_flag(p, "--dataset", "--data", "dataset", choices=DATASETS)
    if command == "train":
        add(
            "--stage",
            choices=STAGE_CHOICES,
            default=None,
            help="1 classifiers, 2 policy pre-training, 3 fine-tuning, 4 two-stream (default: every stage in "
            "order, skipping finished ones)",
        )
        add("--alpha", type=float, default=None, help="exploration mixing alpha (default: preset's)")
        add("--sigma", type=float, default=None, help="fine-tuning penalty of a wrong answer (default: preset's)")
        add(
            "--sigma-curve",
            default=None,
            metavar="S1,S2,...",
            help="stage 2: one policy per penalty (default: preset's)",
        )
        add(
            "--stage-epochs",
            default=None,
            metavar="N|S1,S2,S3[,S4]",
            help="epochs of each stage (N: of every stage, or of --stage's); --epochs is the whole run's, shared "
            "among the stages in the preset's proportions (default: preset's)",
        )
    else:
        add("--draw-max", type=positive_int, default=None, help="--bool-draw: most pictures (default: preset's)")
        renamed_flag(p, "--max-pictures", "--draw-max", "draw_max", type=positive_int)
    return p


def stage_name(text: str | None) -> str | None:
    from zoomrl.experiments.patchdrop.train import STAGES

    if text is None:
        return None
    return STAGES[int(text) - 1] if text.isdigit() else text


def _sigma_list(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--sigma-curve expects numbers separated by commas, received {text!r}") from None


def make_train_config(args: argparse.Namespace):
    from zoomrl.experiments.patchdrop.config import make_config

    stage = stage_name(args.stage)
    over: dict[str, Any] = {
        "dataset": args.dataset,
        "seed": args.seed,
        "alpha": args.alpha,
        "finetune_sigma": args.sigma,
        "sigma_curve": _sigma_list(args.sigma_curve),
    }
    from zoomrl.experiments.patchdrop.config import epoch_overrides

    over.update(epoch_overrides(make_config(args.preset), args.epochs, args.stage_epochs, stage))
    return make_config(args.preset, **over)


def run(command: str, args: argparse.Namespace) -> None:
    if command not in COMMANDS:
        raise ValueError(f"patchdrop takes a command, one of {', '.join(COMMANDS)}; received {command!r}")
    model_dir = Path(args.model_dir or DEFAULTS["MODEL_DIR"])
    log = print  # summary lines; --quiet only hides the progress bars
    if command == "train":
        from zoomrl.experiments.patchdrop.train import run_train

        cfg = make_train_config(args)
        run_train(
            cfg,
            model_dir,
            stage_name(args.stage),
            resume=args.resume,
            keep=args.keep_checkpoints,
            quiet=args.quiet,
            log=log,
        )
    else:
        from zoomrl.experiments.patchdrop.test import run_test

        run_test(
            model_dir,
            Path(args.output_dir or DEFAULTS["OUTPUT_DIR"]),
            preset=args.preset,
            seed=args.seed,
            dataset=args.dataset,
            bool_draw=args.bool_draw,
            max_pictures=args.draw_max,
            quiet=args.quiet,
            log=log,
        )
