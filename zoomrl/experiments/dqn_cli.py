"""The command line of the value-based families (hierarchical, active): one parser and one run for both.

A flag that sets a field of the family's ``Config`` is generated from the field
(:func:`zoomrl.experiments.flags.add_config_flags`): its help is the field's documentation and the value in force,
and "not given" leaves the preset's value, then the dataclass's. The dataclass is the one source of defaults: a
top-level script's constant (``CLASS_OBJECT``, ``NUMBER_OF_STEPS``, ...: the field's name in capitals) overrides
the preset only when it is edited away from the dataclass's default, so the shipped ``NUMBER_OF_STEPS = 10`` does
not undo ``--preset tiny``'s 4 steps. The other constants (``DATA``, ``IMAGE_SET``, ``MODEL_DIR``, ``SKIP_BAD``, ...)
are the defaults of flags that are not configuration fields.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from zoomrl.experiments.common import add_common_flags, add_search_flags, positive_int, train_or_test
from zoomrl.experiments.flags import DQN_TRAIN_FLAGS, PresetAwareParser, add_config_flags

SEARCH_FIELDS = (
    "class_object",
    "number_of_steps",
    "weights",
    "feature_cache",
    "cache_mb",
    "episode_batch",
    "test_batch",
)
"""Configuration flags both families take in both commands."""
CONSTANTS: dict[str, Any] = {
    "PRESET": "paper",
    "SEED": 0,
    "MODEL_DIR": None,
    "OUTPUT_DIR": None,
    "EPOCHS": None,
    "RESUME": False,
    "BOOL_DRAW": False,
    "KEEP_CHECKPOINTS": 3,
    "DATA": [],
    "IMAGE_SET": None,
    "MAX_IMAGES": None,
    "SKIP_BAD": False,
    "CHECKPOINT": None,
}
"""The defaults of the flags that are not configuration fields (a top-level script may edit each)."""
CONSTANTS_OF_COMMON = ("seed", "epochs", "preset")
"""Fields whose constant is a common flag's default (:func:`~zoomrl.experiments.common.add_common_flags`)."""


def open_fraction(text: str) -> float:
    """A flag's number in (0, 1), written as a decimal or a fraction (``0.75``, ``3/4``)."""
    expected = f"expected a number in (0, 1) such as 0.75 or 3/4, received '{text}'"
    try:
        value = float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(expected) from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(expected)
    return value


@dataclasses.dataclass(frozen=True)
class FamilyFlags:
    """What one value-based family adds to the shared flags."""

    package: str
    """``zoomrl.experiments.<family>``: its ``train`` and ``test`` modules run the commands."""
    title: str
    """``--help``'s description after "Train"/"Test"."""
    config_cls: type
    presets: Mapping[str, Mapping[str, Any]]
    fields: tuple[str, ...]
    """The family's configuration flags in both commands (after :data:`SEARCH_FIELDS`)."""
    train_fields: tuple[str, ...]
    """Training's configuration flags (after :data:`~zoomrl.experiments.flags.DQN_TRAIN_FLAGS`)."""
    test_fields: tuple[str, ...] = ()
    options: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    """A field's argparse keywords its annotation does not give (``type``, ``choices``, ``metavar``)."""
    extra_flags: Callable[[argparse.ArgumentParser, str, Mapping[str, Any]], None] | None = None
    """Adds the family's own flags that are no configuration field (hierarchical: ``--model``), given the parser,
    the command and a script's constants."""

    def constants(self, given: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """A script's constants as (the defaults of the other flags, the configuration fields it edited)."""
        c = {**CONSTANTS, **{k: v for k, v in (given or {}).items() if k in CONSTANTS}}
        default = self.config_cls()
        edited = {}
        for f in dataclasses.fields(self.config_cls):
            value = (given or {}).get(f.name.upper())
            if value is not None and f.name not in CONSTANTS_OF_COMMON and value != getattr(default, f.name):
                edited[f.name] = value
        return c, edited

    def config_flags(self, command: str) -> tuple[str, ...]:
        own = (*DQN_TRAIN_FLAGS, *self.train_fields) if command == "train" else self.test_fields
        return (*SEARCH_FIELDS, *self.fields, *own)

    def build_parser(
        self, command: str, given: Mapping[str, Any] | None = None, preset: str | None = None
    ) -> argparse.ArgumentParser:
        """``given``: a top-level script's constants (see the module docstring). ``--help`` shows each field's value
        in the ``--preset`` given (``preset``: the one this parser shows; default the script's or the default)."""
        c, edited = self.constants(given)
        shown = preset or c["PRESET"]
        what = "Train" if command == "train" else "Test"
        p = PresetAwareParser(
            {"preset": shown},
            {"preset": sorted(self.presets)},
            lambda preset: self.build_parser(command, given, preset),
            description=f"{what} {self.title}.",
        )
        add_common_flags(p, command, self.presets, c)
        data_default = c["DATA"] or "the embedded demo set"
        p.add_argument(
            "--data",
            action="append",
            metavar="DIR",
            default=None,
            help=f"a Pascal VOC layout root; repeat to combine several (default: {data_default})",
        )
        p.add_argument(
            "--image-set",
            default=c["IMAGE_SET"] or ("trainval" if command == "train" else "test"),
            help="ImageSets/Main/<set>.txt or <class>_<set>.txt (default: %(default)s)",
        )
        p.add_argument(
            "--max-images",
            type=positive_int,
            default=c["MAX_IMAGES"],
            help="use only the first N images (default: all)",
        )
        add_search_flags(p, skip_bad=c["SKIP_BAD"])
        names = self.config_flags(command)
        add_config_flags(p, self.config_cls, names, self.presets, shown, defaults=edited, options=self.options)
        if command == "test":
            p.add_argument(
                "--checkpoint",
                default=c["CHECKPOINT"],
                metavar="PATH",
                help="Q-network weights (default: the last epoch in MODEL_DIR/<class>; 'best' for the best epoch)",
            )
            p.add_argument(
                "--baselines",
                action=argparse.BooleanOptionalAction,
                default=True,
                help="also run the random agent and the oracle (upper bounds)",
            )
            p.add_argument(
                "--eval-split",
                choices=("test", "val"),
                default="test",
                help="test: the images of --data/--image-set; val: the run's validation images, the split its "
                "training held out of --data/--image-set (give the training data), for choices that must not see "
                "the test split",
            )
        if self.extra_flags is not None:
            self.extra_flags(p, command, given or {})
        p.set_defaults(_constants=c)
        return p

    def run_config(self, command: str, args: argparse.Namespace, **overrides: Any) -> Any:
        """The run's configuration: the preset, then every flag given; ``overrides`` the family's own."""
        values = {name: getattr(args, name) for name in self.config_flags(command)}
        if command == "train":
            values["epochs"] = args.epochs
        module = __import__(f"{self.package}.config", fromlist=["make_config"])
        return module.make_config(args.preset, seed=args.seed, **values, **overrides)

    def run(self, command: str, args: argparse.Namespace, config: Any, model_dir: str, output_dir: str) -> None:
        """``train`` or ``test`` with ``config``; the output folder only for a test."""
        from zoomrl.data.voc import allow_large_images

        if args.allow_large_images:
            allow_large_images()
        output = getattr(args, "output_dir", None) or output_dir
        train_or_test(command, args, self.package, config, args.model_dir or model_dir, output, data_roots(args))


def command_of(args: argparse.Namespace) -> str:
    """``train`` or ``test``: the parser of a test has ``--checkpoint``."""
    return "test" if hasattr(args, "checkpoint") else "train"


def data_roots(args: argparse.Namespace) -> list[str]:
    """``--data``, else a script's ``DATA``, else the embedded demo set."""
    if args.data:
        return list(args.data)
    if getattr(args, "_constants", {}).get("DATA"):
        return list(args._constants["DATA"])
    from zoomrl.data.demo import default_data_dir

    return [str(default_data_dir())]


__all__: Sequence[str] = ("FamilyFlags", "SEARCH_FIELDS", "command_of", "data_roots", "open_fraction")
