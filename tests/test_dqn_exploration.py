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


def test_records_in_batches_do_not_depend_on_the_batch(tmp_path) -> None:
    """Testing runs images in lockstep batches (``envs/vector.records_in_batches``, both families' ``run_records``):
    one record per image in input order, the same records whatever the batch, progress once per batch."""
    from conftest import TinyFeatures, square_task, write_voc
    from zoomrl.data.images import ImageStore, load_images
    from zoomrl.envs import active_runs, zoom_runs
    from zoomrl.experiments.active.config import make_config as active_config
    from zoomrl.experiments.hierarchical.config import make_config as zoom_config

    write_voc(tmp_path, square_task(5, seed=3))
    images = load_images([tmp_path], "trainval", "box", False, None, lambda m: None, progress=False)
    ids = [im.image_id for im in images]

    def first_move(indices, q, infos):  # a fixed policy: the first move, until the step limit
        return np.zeros(len(indices), dtype=np.int64)

    runs = (
        (zoom_runs, zoom_config("tiny", class_object="box")),
        (active_runs, active_config("tiny", class_object="box")),
    )
    for module, cfg in runs:
        seen: dict[int, list[int]] = {b: [] for b in (1, 2, 5)}
        out = {
            b: module.run_records(images, ImageStore(), cfg, first_move, b, TinyFeatures(), progress=seen[b].append)
            for b in seen
        }
        assert [r["image_id"] for r in out[2]] == ids
        assert out[1] == out[2] == out[5]
        assert seen == {1: [1] * 5, 2: [2, 2, 1], 5: [5]}
