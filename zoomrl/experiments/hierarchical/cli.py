"""The hierarchical family's command line.

The top-level scripts hold a block of constants a user may edit; every constant is also a flag whose default is
the constant's value, so ``--help`` shows the values in force. A constant left at the paper's value does not
override the preset (``--preset tiny`` keeps its own 4 steps). ``python -m zoomrl hierarchical`` takes the same
flags with the defaults below.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from zoomrl.experiments.common import add_common_flags, add_search_flags, non_negative_int, positive_int, train_or_test
from zoomrl.experiments.flags import DQN_TRAIN_FLAGS, add_config_flags

COMMANDS = ("train", "test", "demo")
MODELS = ("image_zooms", "pool45_crops")
TRAIN_FLAGS = (
    *DQN_TRAIN_FLAGS,
    "bc_updates_per_epoch",
    "bc_minibatch",
    "epsilon_start",
    "iou_weight",
    "weight_decay",
    "dropout",
    "train_negatives",
    "nothing_left_reward",
    "train_trigger_iou",
    "flip_images",
    "descriptor_pool",
    "val_fraction",
)
"""Training flags made from :class:`~zoomrl.experiments.hierarchical.config.Config`'s fields (their help is the
field's documentation)."""

DEFAULTS: dict[str, Any] = {
    "MODEL": "image_zooms",
    "CLASS_OBJECT": "seven",
    "SCALE_SUBREGION": 3 / 4,
    "NUMBER_OF_STEPS": None,
    "EPOCHS": None,
    "PRESET": "paper",
    "DATA": [],
    "IMAGE_SET": None,
    "WEIGHTS": "auto",
    "MODEL_DIR": None,
    "OUTPUT_DIR": None,
    "CHECKPOINT": None,
    "BOOL_DRAW": False,
    "ONLY_FIRST_OBJECT": False,
    "MAX_IMAGES": None,
    "SEED": 0,
    "RESUME": False,
    "SKIP_BAD": False,
    "FEATURE_CACHE": None,
    "FORCE_TRIGGER": None,
    "KEEP_CHECKPOINTS": 3,
}


def _fraction(text: str) -> float:
    expected = f"expected a number in (0, 1) such as 0.75 or 3/4, received '{text}'"
    try:
        value = float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(expected) from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(expected)
    return value


def _constants(constants: Mapping[str, Any] | None) -> dict[str, Any]:
    """The script's constants over :data:`DEFAULTS`; a constant equal to the paper's value is "not given" so the
    preset decides (the scripts ship ``NUMBER_OF_STEPS = 10``, which must not undo ``--preset tiny``)."""
    from zoomrl.experiments.hierarchical.config import Config

    c = dict(DEFAULTS)
    c.update({k: v for k, v in (constants or {}).items() if k in DEFAULTS})
    paper = Config()
    for const, field in (("NUMBER_OF_STEPS", "number_of_steps"), ("FORCE_TRIGGER", "force_trigger")):
        if c[const] is not None and c[const] == getattr(paper, field):
            c[const] = None
    return c


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
    from zoomrl.experiments.hierarchical.config import PRESETS, Config

    if command == "demo":
        return demo_parser()
    c = _constants(constants)
    what = "Train" if command == "train" else "Test"
    p = argparse.ArgumentParser(description=f"{what} the hierarchical zoom agent (Bellver et al. 2016).")
    add_common_flags(p, command, PRESETS, c)
    add = p.add_argument
    add("--model", default=c["MODEL"], choices=MODELS, help="feature model (default: %(default)s)")
    add(
        "--data",
        action="append",
        metavar="DIR",
        default=None,
        help=f"a Pascal VOC layout root; repeat to combine several (default: {c['DATA'] or 'the embedded demo set'})",
    )
    add(
        "--image-set",
        default=c["IMAGE_SET"] or ("trainval" if command == "train" else "test"),
        help="ImageSets/Main/<set>.txt or <class>_<set>.txt (default: %(default)s)",
    )
    add("--class-object", default=c["CLASS_OBJECT"], help="class to search for (default: %(default)s)")
    add(
        "--number-of-steps",
        type=positive_int,
        default=c["NUMBER_OF_STEPS"],
        help="most actions per search (default: the preset's)",
    )
    add(
        "--scale-subregion",
        type=_fraction,
        default=c["SCALE_SUBREGION"],
        help="child size relative to parent: 3/4 overlapping, 1/2 non-overlapping (default: %(default)s)",
    )
    add(
        "--weights",
        default=c["WEIGHTS"],
        help="backbone weights: auto, imagenet, hed, none or PATH (default: %(default)s)",
    )
    add("--max-images", type=positive_int, default=c["MAX_IMAGES"], help="use only the first N images (default: all)")
    add_search_flags(p, skip_bad=c["SKIP_BAD"], feature_cache=c["FEATURE_CACHE"])
    if command == "train":
        add_config_flags(p, Config, TRAIN_FLAGS, PRESETS, c["PRESET"])
        add(
            "--force-trigger",
            action=argparse.BooleanOptionalAction,
            default=c["FORCE_TRIGGER"],
            help="force the trigger when IoU >= 0.5 during training (paper 3.4; default: preset's)",
        )
        # Issue 17: training that sees what testing sees, a trigger that prefers the best window, overfitting.
        add(
            "--train-searches",
            choices=("objects", "test"),
            default=None,
            help="training's searches per image: one per object (paper) or testing's rule, which searches on after "
            "the last object (default: preset's)",
        )
        add(
            "--train-paint",
            choices=("truth", "window"),
            default=None,
            help="what training paints after a trigger: the object's true box (paper) or the triggered window, as "
            "testing does (default: preset's)",
        )
        add(
            "--max-searches",
            type=positive_int,
            default=None,
            help="most searches per image (testing, and training with --train-searches test; default: preset's)",
        )
    else:
        add(
            "--checkpoint",
            default=c["CHECKPOINT"],
            metavar="PATH",
            help="Q-network weights (default: the last epoch in MODEL_DIR/<class>; 'best' for the best epoch)",
        )
        add(
            "--only-first-object",
            action=argparse.BooleanOptionalAction,
            default=c["ONLY_FIRST_OBJECT"],
            help="one search per image (the paper's first-object setting)",
        )
        add("--max-searches", type=positive_int, default=None, help="most searches per image (default: preset's)")
        add(
            "--score",
            default=None,
            choices=("trigger_q", "trigger_advantage", "trigger_probability", "predicted_iou", "auto"),
            help="detection score of a triggered window; auto: the one the run's validation chose (default: "
            "preset's); testing reports every score's AP",
        )
        add(
            "--baselines",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="also run the random agent and the oracle upper bounds",
        )
    p.set_defaults(_constants=c)
    return p


TRAIN_OVERRIDES = ("epochs", *TRAIN_FLAGS, "force_trigger", "train_searches", "train_paint")
TEST_OVERRIDES = ("only_first_object", "max_searches", "score")


def make_run_config(args: argparse.Namespace):
    from zoomrl.experiments.hierarchical.config import make_config

    overrides = dict(
        variant=args.model,
        class_object=args.class_object,
        scale_subregion=args.scale_subregion,
        number_of_steps=args.number_of_steps,
        weights=args.weights,
        seed=args.seed,
        feature_cache=args.feature_cache,
        cache_mb=args.cache_mb,
        episode_batch=args.episode_batch,
        test_batch=args.test_batch,
    )
    for name in TRAIN_OVERRIDES + TEST_OVERRIDES:
        if hasattr(args, name):
            overrides[name] = getattr(args, name)
    return make_config(args.preset, **overrides)


def data_roots(args: argparse.Namespace) -> list[str]:
    if args.data:
        return args.data
    if args._constants["DATA"]:
        return list(args._constants["DATA"])
    from zoomrl.data.demo import default_data_dir

    return [str(default_data_dir())]


def run(command: str, args: argparse.Namespace) -> None:
    from zoomrl.data.voc import allow_large_images

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

    if args.allow_large_images:
        allow_large_images()
    config = make_run_config(args)
    model_dir = args.model_dir or f"models_{args.model}"
    output_dir = getattr(args, "output_dir", None) or f"results_{args.model}"  # test only
    train_or_test(command, args, "zoomrl.experiments.hierarchical", config, model_dir, output_dir, data_roots(args))
