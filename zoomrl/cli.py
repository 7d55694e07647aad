"""The command line of the four top-level scripts.

Each script holds a block of constants a user may edit; every constant is also a flag whose default is the
constant's value, so ``--help`` shows the values in force. Bad input ends in one line on stderr (exit code 2);
set ``ZOOMRL_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parent.parent


def _fraction(text: str) -> float:
    try:
        value = float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1) such as 0.75 or 3/4, received '{text}'")
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1) such as 0.75 or 3/4, received '{text}'")
    return value


def _common(parser: argparse.ArgumentParser, c: dict[str, Any]) -> None:
    from zoomrl.config import PRESETS

    add = parser.add_argument
    add("--data", action="append", metavar="DIR", default=None,
        help=f"a Pascal VOC layout root; repeat to combine several (default: {c['DATA'] or 'the embedded demo set'})")
    add("--image-set", default=c["IMAGE_SET"], help="ImageSets/Main/<set>.txt or <class>_<set>.txt (default: %(default)s)")
    add("--class-object", default=c["CLASS_OBJECT"], help="class to search for (default: %(default)s)")
    add("--preset", default=c["PRESET"], choices=sorted(PRESETS), help="hyperparameter preset (default: %(default)s)")
    add("--number-of-steps", type=int, default=c["NUMBER_OF_STEPS"], help="most actions per search (default: %(default)s)")
    add("--scale-subregion", type=_fraction, default=c["SCALE_SUBREGION"],
        help="child size relative to parent: 3/4 overlapping, 1/2 non-overlapping (default: %(default)s)")
    add("--weights", default=c["WEIGHTS"], help="backbone weights: auto, imagenet, hed, none or PATH (default: %(default)s)")
    add("--model-dir", default=c["MODEL_DIR"], help="checkpoints go to MODEL_DIR/<class>/ (default: %(default)s)")
    add("--max-images", type=int, default=c["MAX_IMAGES"], help="use only the first N images (default: all)")
    add("--seed", type=int, default=c["SEED"], help="seeds Python, NumPy and Keras (default: %(default)s)")
    add("--skip-bad", action=argparse.BooleanOptionalAction, default=c["SKIP_BAD"],
        help="skip unreadable images and malformed XML, counting them (default: %(default)s)")
    add("--feature-cache", default=c["FEATURE_CACHE"], metavar="DIR",
        help="HDF5 feature cache reused across runs (default: memory only)")
    add("--cache-mb", type=float, default=None, help="memory for cached features, MB (default: preset's)")
    add("--episode-batch", type=int, default=None, help="images run in lockstep in training (default: preset's)")
    add("--test-batch", type=int, default=None, help="images run in lockstep in testing (default: preset's)")
    add("--quiet", action="store_true", help="no progress bars")


def training_parser(c: dict[str, Any], variant: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=f"Train the hierarchical zoom agent ({variant}).")
    _common(p, c)
    add = p.add_argument
    add("--epochs", type=int, default=c["EPOCHS"], help="epochs (default: the preset's)")
    add("--resume", action=argparse.BooleanOptionalAction, default=c["RESUME"],
        help="continue the run in MODEL_DIR/<class> after its last finished epoch")
    add("--learning-rate", type=float, default=None, help="Adam learning rate (default: preset's)")
    add("--train-every", type=int, default=None, help="one DQN update every K environment steps (default: preset's)")
    add("--minibatch", type=int, default=None, help="DQN minibatch (default: preset's)")
    add("--target-update-every", type=int, default=None, help="target network sync period in updates; 0 = none")
    add("--force-trigger", action=argparse.BooleanOptionalAction, default=c["FORCE_TRIGGER"],
        help="force the trigger when IoU >= 0.5 during training (paper 3.4)")
    return p


def testing_parser(c: dict[str, Any], variant: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=f"Test the hierarchical zoom agent ({variant}) and evaluate it.")
    _common(p, c)
    add = p.add_argument
    add("--checkpoint", default=c["CHECKPOINT"], metavar="PATH",
        help="Q-network weights (default: the last epoch in MODEL_DIR/<class>)")
    add("--output-dir", default=c["OUTPUT_DIR"], help="outputs go to OUTPUT_DIR/<class>/ (default: %(default)s)")
    add("--bool-draw", action=argparse.BooleanOptionalAction, default=c["BOOL_DRAW"],
        help="draw one PNG per image with the search")
    add("--only-first-object", action=argparse.BooleanOptionalAction, default=c["ONLY_FIRST_OBJECT"],
        help="one search per image (the paper's first-object setting)")
    add("--max-searches", type=int, default=None, help="most searches per image (default: preset's)")
    add("--baselines", action=argparse.BooleanOptionalAction, default=True,
        help="also run the random agent and the oracle upper bounds")
    return p


def _config(args: argparse.Namespace, variant: str, c: dict[str, Any]):
    from zoomrl.config import make_config

    overrides = dict(
        variant=variant, class_object=args.class_object, scale_subregion=args.scale_subregion,
        number_of_steps=args.number_of_steps, weights=args.weights, seed=args.seed,
        feature_cache=args.feature_cache, cache_mb=args.cache_mb, episode_batch=args.episode_batch,
        test_batch=args.test_batch,
    )
    for name in ("epochs", "learning_rate", "train_every", "minibatch", "target_update_every", "force_trigger",
                 "only_first_object", "max_searches"):
        if hasattr(args, name):
            overrides[name] = getattr(args, name)
    return make_config(args.preset, **overrides)


def _data(args: argparse.Namespace, c: dict[str, Any]) -> list[str]:
    if args.data:
        return args.data
    if c["DATA"]:
        return list(c["DATA"])
    from zoomrl.pipeline import default_data_dir

    return [str(default_data_dir())]


def _run(fn: Callable[[], Any]) -> int:
    """Run ``fn``; turn expected errors into one line on stderr and exit code 2."""
    from zoomrl.backbone import WeightsError
    from zoomrl.checkpoint import CheckpointError
    from zoomrl.voc import DataError

    try:
        fn()
    except (DataError, WeightsError, CheckpointError, FileNotFoundError, ValueError, OSError) as exc:
        if os.environ.get("ZOOMRL_DEBUG"):
            raise
        print(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the last finished epoch's checkpoint is intact (continue with --resume)", file=sys.stderr)
        return 130
    return 0


def _quiet_backend() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def training_main(variant: str, constants: dict[str, Any], argv: list[str] | None = None) -> int:
    """Entry point of ``image_zooms_training.py`` and ``pool45_crops_training.py``."""
    _quiet_backend()
    args = training_parser(constants, variant).parse_args(argv)

    def go() -> None:
        from zoomrl.training import train

        config = _config(args, variant, constants)
        result = train(config, _data(args, constants), args.image_set, args.model_dir, max_images=args.max_images,
                       skip_bad=args.skip_bad, resume=args.resume, show_progress=not args.quiet)
        print(f"done: checkpoints and training_curves.png in {result['run_dir']}")

    return _run(go)


def testing_main(variant: str, constants: dict[str, Any], argv: list[str] | None = None) -> int:
    """Entry point of ``image_zooms_testing.py`` and ``pool45_crops_testing.py``."""
    _quiet_backend()
    args = testing_parser(constants, variant).parse_args(argv)

    def go() -> None:
        from zoomrl.testing import test

        config = _config(args, variant, constants)
        test(config, _data(args, constants), args.image_set, args.checkpoint,
             Path(args.output_dir) / config.class_object, model_dir=args.model_dir, max_images=args.max_images,
             skip_bad=args.skip_bad, bool_draw=args.bool_draw, baselines=args.baselines,
             show_progress=not args.quiet)

    return _run(go)
