"""The active family's command line: the hierarchical family's flags where they mean the same thing, plus the
active agent's own (``--features``, ``--fine-smaller``, ``--continuous-trigger``, ``--guided-exploration``, ...).

Defaults: checkpoints in ``models_active/<class>`` (``models_active_<features>/<class>`` with ``--features`` scratch,
roi or clip, e.g. ``models_active_roi``), test outputs in ``results_active/<class>`` (``results_active_<features>``).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from zoomrl.experiments.common import add_common_flags, add_search_flags, positive_int, train_or_test
from zoomrl.experiments.flags import DQN_TRAIN_FLAGS, add_config_flags

COMMANDS = ("train", "test")
TRAIN_FLAGS = (
    *DQN_TRAIN_FLAGS,
    "continuous_trigger",
    "guided_exploration",
    "state_geometry",
    "state_steps",
    "explore_trigger",
    "roi_max_side",
)
"""Training flags made from :class:`~zoomrl.experiments.active.config.Config`'s fields (their help is the
field's documentation)."""

DEFAULTS: dict[str, Any] = {
    "PRESET": "paper",
    "SEED": 0,
    "MODEL_DIR": None,
    "OUTPUT_DIR": None,
    "EPOCHS": None,
    "RESUME": False,
    "BOOL_DRAW": False,
    "KEEP_CHECKPOINTS": 3,
}


def build_parser(command: str, constants: Mapping[str, Any] | None = None) -> argparse.ArgumentParser:
    from zoomrl.experiments.active.config import FEATURES, PRESETS, Config

    c = {**DEFAULTS, **(constants or {})}
    what = "Train" if command == "train" else "Test"
    p = argparse.ArgumentParser(description=f"{what} the active localisation agent (Caicedo and Lazebnik 2015).")
    add_common_flags(p, command, PRESETS, c)
    add = p.add_argument
    add(
        "--data",
        action="append",
        metavar="DIR",
        default=None,
        help="a Pascal VOC layout root; repeat to combine several (default: the embedded demo set)",
    )
    add(
        "--image-set",
        default="trainval" if command == "train" else "test",
        help="ImageSets/Main/<set>.txt or <class>_<set>.txt (default: %(default)s)",
    )
    add("--class-object", default="seven", help="class to search for (default: %(default)s)")
    add(
        "--features",
        default=None,
        choices=FEATURES,
        help="vgg: VGG-16 block5_pool of the box with context; scratch: a CNN on the 84x84 box trained end to end; "
        "roi: VGG-16 once per image to block5_conv3, each box by RoIAlign; clip: a CLIP image encoder on the "
        "box (default: preset's, paper vgg)",
    )
    add(
        "--clip-preset",
        default=None,
        metavar="NAME",
        help="--features clip: the keras-hub CLIP preset (default: preset's, clip_vit_base_patch32); with "
        "--weights none its architecture is built with random weights",
    )
    add(
        "--avoid-revisits",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="testing: the greedy policy never moves to a box already visited in this search (default: preset's)",
    )
    add("--weights", default="auto", help="backbone weights: auto, imagenet, hed, none or PATH (default: %(default)s)")
    add("--max-images", type=positive_int, default=None, help="use only the first N images (default: all)")
    add(
        "--number-of-steps",
        type=positive_int,
        default=None,
        help="most actions per search; a test search restarts after this many (default: preset's, paper 40)",
    )
    add(
        "--test-steps",
        type=positive_int,
        default=None,
        help="most actions per test image (default: preset's, paper 200)",
    )
    add(
        "--fine-smaller",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a tenth action, a finer smaller (default: preset's, off)",
    )
    add_search_flags(p)
    if command == "train":
        add_config_flags(p, Config, TRAIN_FLAGS, PRESETS, c["PRESET"], metavars={"roi_max_side": "PX"})
    else:
        add(
            "--checkpoint",
            default=None,
            metavar="PATH",
            help="Q-network weights (default: the last epoch in MODEL_DIR/<class>; 'best' for the best epoch)",
        )
        add(
            "--baselines",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="also run the random agent and the oracle",
        )
    return p


TRAIN_OVERRIDES = ("epochs", *TRAIN_FLAGS)


def make_run_config(args: argparse.Namespace):
    from zoomrl.experiments.active.config import make_config

    overrides = dict(
        features=args.features,
        class_object=args.class_object,
        weights=args.weights,
        seed=args.seed,
        feature_cache=args.feature_cache,
        cache_mb=args.cache_mb,
        episode_batch=args.episode_batch,
        test_batch=args.test_batch,
        number_of_steps=args.number_of_steps,
        test_steps=args.test_steps,
        fine_smaller=args.fine_smaller,
        clip_preset=args.clip_preset,
        avoid_revisits=args.avoid_revisits,
    )
    for name in TRAIN_OVERRIDES:
        if hasattr(args, name):
            overrides[name] = getattr(args, name)
    return make_config(args.preset, **overrides)


def data_roots(args: argparse.Namespace) -> list[str]:
    if args.data:
        return list(args.data)
    from zoomrl.data.demo import default_data_dir

    return [str(default_data_dir())]


def run(command: str, args: argparse.Namespace) -> None:
    from zoomrl.data.voc import allow_large_images

    if args.allow_large_images:
        allow_large_images()
    config = make_run_config(args)
    suffix = "" if config.features == "vgg" else f"_{config.features}"
    model_dir = args.model_dir or f"models_active{suffix}"
    output_dir = getattr(args, "output_dir", None) or f"results_active{suffix}"  # test only
    train_or_test(command, args, "zoomrl.experiments.active", config, model_dir, output_dir, data_roots(args))
