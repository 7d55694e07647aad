"""The patchdrop family's command line: ``python -m zoomrl patchdrop train|test [--data ...] [--stage ...]``.

Training flags are generated from :class:`PatchDropConfig` (``--help`` shows the value in force). ``test`` reads
the run's saved configuration: only :data:`TEST_FIELDS` (``--eval-batch``, ``--random-draws``, ``--draw-max``) may
change; ``--seed`` seeds the test's own randomness (the random baselines; default: the run's seed), and a
``--preset`` other than the run's is an error. ``--dataset``, ``--max-pictures`` and ``--sigma`` are the old names
of ``--data``, ``--draw-max`` and ``--finetune-sigma`` (still accepted)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoomrl.experiments.common import add_common_flags, positive_int
from zoomrl.experiments.flags import add_config_flags, renamed_flag

COMMANDS = ("train", "test")
DEFAULTS: dict[str, Any] = {
    "PRESET": "fast",
    "MODEL_DIR": "models_patchdrop",
    "OUTPUT_DIR": "results_patchdrop",
    "SEED": 0,
}
STAGE_CHOICES = ("1", "2", "3", "4", "classifiers", "pretrain", "finetune", "two_stream")
NOT_FLAGS = {"preset", "dataset", "seed", "sigma_curve", "max_pictures"}
"""Fields with a flag of their own (``--preset``, ``--data``, ``--seed``, ``--sigma-curve``, ``--draw-max``);
the epoch fields come from ``--epochs`` and ``--stage-epochs``."""


def build_parser(command: str, constants: Mapping[str, Any] | None = None) -> argparse.ArgumentParser:
    import dataclasses

    from zoomrl.agents.patchdrop.config import EPOCH_FIELDS
    from zoomrl.experiments.patchdrop.config import DATASETS, PRESETS, TEST_FIELDS, PatchDropConfig

    c = {**DEFAULTS, **(constants or {})}
    what = "Train" if command == "train" else "Test"
    p = argparse.ArgumentParser(
        description=f"{what} PatchDrop (Uzkent and Ermon 2020): a policy keeps a few of 16 patches at high resolution."
    )
    add_common_flags(p, command, PRESETS, c if command == "train" else {**c, "PRESET": None, "SEED": None})
    add = p.add_argument
    add(
        "--data",
        dest="dataset",
        choices=DATASETS,
        default=None,
        help="digits (offline canvases), cifar10 or "
        "cifar100 (keras.datasets, a download) (default: the preset's, digits; test: the run's)",
    )
    renamed_flag(p, "--dataset", "--data", "dataset", choices=DATASETS)
    add("--draw-max", type=positive_int, default=None, help="--bool-draw: most pictures (default: the preset's)")
    renamed_flag(p, "--max-pictures", "--draw-max", "draw_max", type=positive_int)
    if command == "test":
        for action in p._actions:  # the run's values stand unless given
            if action.dest in ("preset", "seed"):
                action.help = {
                    "preset": "the run's preset (another is an error)",
                    "seed": "seeds the random baselines (default: the run's seed)",
                }[action.dest]
        add_config_flags(p, PatchDropConfig, [f for f in TEST_FIELDS if f != "max_pictures"], PRESETS, c["PRESET"])
        return p
    add(
        "--stage",
        choices=STAGE_CHOICES,
        default=None,
        help="train only this stage (1 classifiers, 2 policy "
        "pre-training, 3 fine-tuning, 4 two-stream), from the run's end of the stage before (default: every stage)",
    )
    add("--sigma-curve", default=None, metavar="S1,S2,...", help="stage 2: one policy per penalty (default: preset's)")
    add(
        "--stage-epochs",
        default=None,
        metavar="N|S1,S2,S3[,S4]",
        help="epochs of each stage (N: of every stage, "
        "or of --stage's); --epochs is the whole run's, shared among the stages in the preset's proportions",
    )
    skip = NOT_FLAGS | set(EPOCH_FIELDS.values())
    add_config_flags(
        p,
        PatchDropConfig,
        [f.name for f in dataclasses.fields(PatchDropConfig) if f.name not in skip],
        PRESETS,
        c["PRESET"],
    )
    renamed_flag(p, "--sigma", "--finetune-sigma", "finetune_sigma", type=float)
    return p


def stage_name(text: str | None) -> str | None:
    from zoomrl.agents.patchdrop.stages import STAGES

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
    import dataclasses

    from zoomrl.agents.patchdrop.config import epoch_overrides
    from zoomrl.experiments.patchdrop.config import PatchDropConfig, make_config

    names = [f.name for f in dataclasses.fields(PatchDropConfig)]
    over: dict[str, Any] = {k: getattr(args, k) for k in names if k not in NOT_FLAGS and hasattr(args, k)}
    over.update(dataset=args.dataset, seed=args.seed, sigma_curve=_sigma_list(args.sigma_curve))
    over.update(max_pictures=args.draw_max)
    over.update(epoch_overrides(make_config(args.preset), args.epochs, args.stage_epochs, stage_name(args.stage)))
    return make_config(args.preset, **over)


def saved_config(model_dir: Path, args: argparse.Namespace):
    """The run's saved configuration with the test settings of the command line (see the module docstring)."""
    from zoomrl.experiments.patchdrop.config import TEST_FIELDS, PatchDropConfig

    path = model_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{model_dir}: no config.json; train first (python -m zoomrl patchdrop train --model-dir {model_dir})"
        )
    cfg = PatchDropConfig.load(path)
    if args.dataset is not None and args.dataset != cfg.dataset:
        raise ValueError(f"--data {args.dataset}: the model in {model_dir} was trained on {cfg.dataset}")
    if args.preset is not None and args.preset != cfg.preset:
        raise ValueError(
            f"--preset {args.preset}: the run in {model_dir} was trained with --preset {cfg.preset} "
            f"(testing reads its saved configuration; drop --preset)"
        )
    changes = {k: getattr(args, k) for k in TEST_FIELDS if getattr(args, k, None) is not None}
    changes.update({"seed": args.seed} if args.seed is not None else {})
    changes.update({"max_pictures": args.draw_max} if args.draw_max else {})
    return cfg.replace(**changes)


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
