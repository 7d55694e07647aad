"""The active family's command line: the value-based families' flags (:mod:`zoomrl.experiments.dqn_cli`), where
they mean what they mean in the hierarchical family (``--iou-weight`` too), plus the active agent's own
(``--features``, ``--fine-smaller``, ``--continuous-trigger``, ``--guided-exploration``, ``--aar-score`` at test
time, ...).

Defaults: checkpoints in ``models_active/<class>`` (``models_active_<features>/<class>`` with ``--features`` scratch,
roi or clip, e.g. ``models_active_roi``), test outputs in ``results_active/<class>`` (``results_active_<features>``).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from zoomrl.agents.dqn.config import REGION_LABELS, SCORES
from zoomrl.envs.active import REVISIT_SCOPES
from zoomrl.experiments.active.config import AAR_SCORES, PRESETS, Config
from zoomrl.experiments.common import non_negative_int
from zoomrl.experiments.dqn_cli import FamilyFlags, command_of, data_roots
from zoomrl.vision.feature_config import FEATURES

COMMANDS = ("train", "test")

FLAGS = FamilyFlags(
    package="zoomrl.experiments.active",
    title="the active localisation agent (Caicedo and Lazebnik 2015)",
    config_cls=Config,
    presets=PRESETS,
    fields=(
        "features",
        "clip_preset",
        "avoid_revisits",
        "revisit_iou",
        "revisit_scope",
        "test_steps",
        "fine_smaller",
        "aar_vote",
        "restart_scale",
        "test_restart_steps",
        "test_epsilon",
    ),
    train_fields=(
        "continuous_trigger",
        "guided_exploration",
        "state_geometry",
        "state_steps",
        "explore_trigger",
        "iou_weight",
        "region_scorer",
        "region_labels",
        "box_regression",
        "roi_max_side",
        "val_fraction",
        "val_every",
    ),
    test_fields=("score", "aar_score"),
    options={
        "features": {"choices": FEATURES},
        "clip_preset": {"metavar": "NAME"},
        "roi_max_side": {"metavar": "PX"},
        "score": {"choices": SCORES},
        "region_labels": {"choices": REGION_LABELS},
        "aar_score": {"choices": AAR_SCORES},
        "revisit_scope": {"choices": REVISIT_SCOPES},
        "aar_vote": {"metavar": "IOU"},
        "restart_scale": {"metavar": "SHARE"},
        "test_restart_steps": {"metavar": "N", "type": non_negative_int},  # 0: number_of_steps
        "test_epsilon": {"metavar": "P"},
    },
)


def build_parser(command: str, constants: Mapping[str, Any] | None = None) -> argparse.ArgumentParser:
    return FLAGS.build_parser(command, constants)


def make_run_config(args: argparse.Namespace) -> Config:
    return FLAGS.run_config(command_of(args), args)


def run(command: str, args: argparse.Namespace) -> None:
    config = make_run_config(args)
    suffix = "" if config.features == "vgg" else f"_{config.features}"
    FLAGS.run(command, args, config, f"models_active{suffix}", f"results_active{suffix}")


__all__ = ["COMMANDS", "FLAGS", "build_parser", "data_roots", "make_run_config", "run"]
