"""The value-based families' configurations are composed of parts that live beside the code that reads them: the
task (``envs/search_config.py``), the feature model (``vision/feature_config.py``) and the DQN's run
(``agents/dqn/config.DQNRunConfig``). Each part checks its own fields on its own, and a family's ``Config`` holds
exactly the parts' fields plus its own (one source of defaults)."""

from __future__ import annotations

import dataclasses

import pytest

from zoomrl.agents.dqn.config import DQNRunConfig, ScoredRunConfig
from zoomrl.core.config import ConfigError
from zoomrl.envs.search_config import ActiveTaskConfig, ZoomTaskConfig
from zoomrl.experiments.active import config as active
from zoomrl.experiments.hierarchical import config as hierarchical
from zoomrl.vision.feature_config import BoxFeatureConfig, ZoomFeatureConfig


def names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize(
    ("family", "parts", "own"),
    [
        (hierarchical, (ScoredRunConfig, ZoomTaskConfig, ZoomFeatureConfig, DQNRunConfig), set()),
        (
            active,
            (ScoredRunConfig, ActiveTaskConfig, BoxFeatureConfig, DQNRunConfig),
            {"aar_nms", "aar_vote", "aar_score"},
        ),
    ],
)
def test_family_config_is_its_parts(family, parts, own) -> None:
    fields = names(family.Config)
    assert fields == set().union(*map(names, parts)) | own
    # The defaults are the parts' own: the family restates none of them.
    config = family.Config()
    for part in parts:
        for name, value in dataclasses.asdict(part()).items():
            assert getattr(config, name) == value, name


@pytest.mark.parametrize(
    ("cls", "changes", "field"),
    [
        (ZoomTaskConfig, {"scale_subregion": 1.0}, "scale_subregion"),
        (ZoomTaskConfig, {"max_searches": 0}, "max_searches"),
        (ZoomTaskConfig, {"train_paint": "both"}, "train_paint"),
        (ZoomTaskConfig, {"train_searches": "all"}, "train_searches"),
        # Below the test's trigger_iou (0.5) the oracle would demonstrate wrong triggers.
        (ZoomTaskConfig, {"train_trigger_iou": 0.4}, "train_trigger_iou"),
        (ZoomTaskConfig, {"descriptor_scale": 0.0}, "descriptor_scale"),
        (ActiveTaskConfig, {"context": 112}, "context"),
        (ActiveTaskConfig, {"alpha": 0.0}, "alpha"),
        (ActiveTaskConfig, {"explore_trigger": 1.5}, "explore_trigger"),
        (ActiveTaskConfig, {"test_steps": 0}, "test_steps"),
        (ZoomFeatureConfig, {"descriptor_pool": 8}, "descriptor_pool"),
        (ZoomFeatureConfig, {"variant": "vgg"}, "variant"),
        (ZoomFeatureConfig, {"cache_mb": -1.0}, "cache_mb"),
        (BoxFeatureConfig, {"features": "image_zooms"}, "features"),
        (BoxFeatureConfig, {"clip_preset": " "}, "clip_preset"),
        (BoxFeatureConfig, {"roi_max_side": 0}, "roi_max_side"),
        (DQNRunConfig, {"episode_batch": 0}, "episode_batch"),
        (DQNRunConfig, {"test_batch": 0}, "test_batch"),
    ],
)
def test_each_part_checks_its_fields(cls, changes, field) -> None:
    with pytest.raises(ConfigError, match=field):
        cls(**changes).validate()


def test_parts_accept_their_edges() -> None:
    # The edges that pass: a train_trigger_iou equal to trigger_iou, no context, the finest pooling.
    ZoomTaskConfig(train_trigger_iou=0.5).validate()
    ActiveTaskConfig(context=0).validate()
    ZoomFeatureConfig(descriptor_pool=1).validate()


def test_active_env_kwargs_by_phase() -> None:
    task = ActiveTaskConfig(trigger_iou=0.7, test_trigger_iou=0.4, fine_smaller=True)
    assert task.num_actions == 10 and ActiveTaskConfig().num_actions == 9
    assert task.env_kwargs(True)["trigger_iou"] == 0.7
    assert task.env_kwargs(False)["trigger_iou"] == 0.4
    assert task.env_kwargs(False)["max_total_steps"] == 200


def test_a_resumed_run_may_change_only_the_running_and_test_time_fields() -> None:
    """``RESULT_FIELDS`` (kept on ``--resume``) are every field but these, written out by hand."""
    running = {"epochs", "test_batch", "preset", "extra", "backbone_batch", "cache_mb", "feature_cache"}
    hier = running | {"only_first_object", "score", "val_every"}
    act = running | {
        "test_steps",
        "test_trigger_iou",
        "restart_scale",
        "test_restart_steps",
        "test_epsilon",
        "avoid_revisits",
        "revisit_iou",
        "revisit_scope",
        "aar_nms",
        "aar_vote",
        "aar_score",
        "score",
        "val_every",
    }
    assert names(hierarchical.Config) - set(hierarchical.RESULT_FIELDS) == hier
    assert names(active.Config) - set(active.RESULT_FIELDS) == act
    assert {"iou_weight", "n_step", "descriptor_pool", "flip_images"} <= set(hierarchical.RESULT_FIELDS)
