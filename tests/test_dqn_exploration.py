"""Exploration of the value-based families: every image draws from its own generator (``per_image_explorer``),
seeded by the family's key, so an image's choices do not depend on the images beside it nor on the batch order.
The references below draw from plain NumPy generators seeded by hand."""

from __future__ import annotations

import numpy as np

from zoomrl.agents.dqn.agent import epsilon_greedy, per_image_explorer
from zoomrl.envs.active import TRIGGER as ACTIVE_TRIGGER
from zoomrl.envs.active_runs import guided_choice
from zoomrl.envs.zoom import TRIGGER as ZOOM_TRIGGER


def infos(*indices: int, **extra) -> list[dict]:
    return [{"image_index": k, **extra} for k in indices]


def test_each_image_keeps_its_own_stream_across_calls_and_batches() -> None:
    explorer = per_image_explorer(lambda q, info, rng: int(rng.integers(1000)), [7, 2], [3])
    q = np.zeros((2, 4))
    first = explorer(q, infos(0, 1)).tolist()
    alone = explorer(q[:1], infos(1)).tolist() + explorer(q[:1], infos(0)).tolist()
    ref = {k: np.random.default_rng([7, 2, k, 3]).integers(1000, size=2).tolist() for k in (0, 1)}
    # Second calls continue each image's stream (not a fresh generator), whatever ran beside it.
    assert first == [ref[0][0], ref[1][0]] and alone == [ref[1][1], ref[0][1]]


def test_hierarchical_policy_seeds_by_seed_epoch_image_and_forces_the_trigger() -> None:
    from zoomrl.experiments.hierarchical.config import make_config
    from zoomrl.experiments.hierarchical.train import training_policy

    cfg = make_config("tiny")
    images = range(12)
    q = np.random.default_rng(0).normal(size=(12, 6))
    got = training_policy(cfg, 0.5, 11, 4)(q, infos(*images, iou=0.1)).tolist()
    ref = [epsilon_greedy(q[j], 0.5, np.random.default_rng([11, 4, k])) for j, k in enumerate(images)]
    assert got == ref and len(set(got)) > 2
    # IoU at the trigger's threshold: the trigger, forced (paper 3.4), whatever the draw.
    assert training_policy(cfg, 0.5, 11, 4)(q, infos(*images, iou=0.5)).tolist() == [ZOOM_TRIGGER] * 12


def test_active_policy_seeds_by_seed_epoch_image_and_three() -> None:
    from zoomrl.experiments.active.config import make_config
    from zoomrl.experiments.active.train import training_policy

    cfg = make_config("tiny", explore_trigger=0.2)
    images = range(12)
    q = np.random.default_rng(1).normal(size=(12, 9))
    positive = (0, 4, ACTIVE_TRIGGER)
    got = training_policy(cfg, 0.7, 11, 4)(q, infos(*images, positive_actions=positive)).tolist()
    ref = [
        guided_choice(q[j], 0.7, positive, np.random.default_rng([11, 4, k, 3]), True, 0.2)
        for j, k in enumerate(images)
    ]
    assert got == ref and len(set(got)) > 2
