"""The hierarchical family's command line: the value-based families' flags (:mod:`zoomrl.experiments.dqn_cli`),
``--model`` and the ``demo`` command.

The top-level scripts hold a block of constants a user may edit; each is a flag's default, and one that names a
configuration field (``CLASS_OBJECT``, ``NUMBER_OF_STEPS``, ``SCALE_SUBREGION``, ``FORCE_TRIGGER``, ...) overrides the
preset only when edited away from the dataclass's default (``--preset tiny`` keeps its own 4 steps).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from zoomrl.agents.dqn.config import REGION_LABELS
from zoomrl.envs.search_config import TRAIN_PAINTS, TRAIN_SEARCHES
from zoomrl.experiments.common import non_negative_int
from zoomrl.experiments.dqn_cli import FamilyFlags, command_of, data_roots, open_fraction
from zoomrl.experiments.hierarchical.config import PRESETS, SCORES, Config
from zoomrl.vision.feature_config import VARIANTS as MODELS

COMMANDS = ("train", "test", "demo")


def model_flag(p: argparse.ArgumentParser, command: str, constants: Mapping[str, Any]) -> None:
    model = constants.get("MODEL", "image_zooms")
    p.add_argument("--model", default=model, choices=MODELS, help="feature model (default: %(default)s)")


FLAGS = FamilyFlags(
    package="zoomrl.experiments.hierarchical",
    title="the hierarchical zoom agent (Bellver et al. 2016)",
    config_cls=Config,
    presets=PRESETS,
    fields=("scale_subregion", "max_searches"),
    train_fields=(
        "bc_updates_per_epoch",
        "bc_minibatch",
        "epsilon_start",
        "iou_weight",
        "weight_decay",
        "dropout",
        "train_negatives",
        "nothing_left_reward",
        "train_trigger_iou",
        "continuous_trigger",
        "flip_images",
        "descriptor_pool",
        "val_fraction",
        "val_every",
        "region_scorer",
        "region_labels",
        "box_regression",
        "force_trigger",
        "train_searches",  # issue 17: training that sees what testing sees
        "train_paint",
    ),
    test_fields=("only_first_object", "score"),
    extra_flags=model_flag,
    options={
        "scale_subregion": {"type": open_fraction},
        "score": {"choices": SCORES},
        "region_labels": {"choices": REGION_LABELS},
        "train_searches": {"choices": TRAIN_SEARCHES},
        "train_paint": {"choices": TRAIN_PAINTS},
    },
)


def demo_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Train and test both feature models on the embedded demo set (the "
        "demo preset), then print one table."
    )
    p.add_argument("--epochs", type=non_negative_int, default=None, help="epochs (default: the demo preset's)")
    p.add_argument("--seed", type=int, default=0, help="seeds Python, NumPy and Keras (default: %(default)s)")
    p.add_argument("--weights", default="auto", help="backbone weights (default: %(default)s)")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), help="default: both")
    p.add_argument("--root", default=".", help="models_<model>/ and results_<model>/ go here (default: %(default)s)")
    p.add_argument("--data", action="append", metavar="DIR", default=None, help="default: the embedded demo set")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def build_parser(command: str, constants: Mapping[str, Any] | None = None) -> argparse.ArgumentParser:
    if command == "demo":
        return demo_parser()
    return FLAGS.build_parser(command, constants)


def make_run_config(args: argparse.Namespace) -> Config:
    return FLAGS.run_config(command_of(args), args, variant=args.model)


def run(command: str, args: argparse.Namespace) -> None:
    if command == "demo":
        from zoomrl.data.demo import default_data_dir
        from zoomrl.experiments.hierarchical.demo import demo

        demo(
            args.data or [str(default_data_dir())],
            weights=args.weights,
            seed=args.seed,
            epochs=args.epochs,
            models=args.models,
            root=args.root,
            show_progress=not args.quiet,
        )
        return
    FLAGS.run(command, args, make_run_config(args), f"models_{args.model}", f"results_{args.model}")


__all__ = ["COMMANDS", "FLAGS", "MODELS", "build_parser", "data_roots", "make_run_config", "run"]
