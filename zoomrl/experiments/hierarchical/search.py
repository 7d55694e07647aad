"""What hierarchical training, validation and testing share: the feature model and the checkpoints' metadata of a
run, and what the agent logs per step. The envs and the searches are :mod:`zoomrl.envs.zoom_runs`' (re-exported).
Kept apart from ``train`` and ``test`` so that each imports it and neither imports the other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from zoomrl.envs.zoom import NUM_ACTIONS
from zoomrl.envs.zoom_runs import flipped, greedy_policy, make_envs, run_records, training_rules
from zoomrl.experiments.hierarchical.config import Config
from zoomrl.vision.features import FeatureModel

Log = Callable[[str], None]


def feature_model_for(config: Config, log: Log) -> FeatureModel:
    """The VGG-16 feature model a run's configuration asks for."""
    from zoomrl.vision.features import build_feature_model

    return build_feature_model(
        config.variant,
        config.weights,
        backbone_batch=config.backbone_batch,
        cache_mb=config.cache_mb,
        cache_dir=config.feature_cache,
        pool45_max_side=config.pool45_max_side,
        log=log,
    )


def run_meta(config: Config, state_size: int) -> dict[str, Any]:
    """What a checkpoint of this run is for (stored in its files, checked when they are loaded)."""
    return {
        "family": "hierarchical",
        "variant": config.variant,
        "class_object": config.class_object,
        "state_size": state_size,
        "num_actions": NUM_ACTIONS,
        "scale_subregion": config.scale_subregion,
        "number_of_steps": config.number_of_steps,
        "iou_head": config.iou_weight > 0,
    }


def agent_outputs(agent: Any) -> Callable[[np.ndarray], np.ndarray]:
    """What testing logs per step: the agent's Q-values, then its predicted IoU of the window as one more column
    when it has the IoU head (the env logs it as ``predicted_iou``, the ``predicted_iou`` detection score)."""
    return agent.q_values if agent.iou_model is None else agent.q_values_and_iou


__all__ = [
    "Log",
    "agent_outputs",
    "feature_model_for",
    "flipped",
    "greedy_policy",
    "make_envs",
    "run_meta",
    "run_records",
    "training_rules",
]
