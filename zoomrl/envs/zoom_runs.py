"""The envs of a data set's images under a hierarchical run's rules, and searches run on them in lockstep batches.

:func:`make_envs` builds one :class:`~zoomrl.envs.zoom.ZoomEnv` per image from a run's configuration (the
hierarchical family's ``Config``: any object with its fields ``class_object``, ``scale_subregion``,
``number_of_steps``, ``history_length``, ``trigger_iou``, ``descriptor_scale``, ``max_searches``,
``only_first_object`` and the training rules of issue 17); :func:`run_records` runs a policy on every image through
:class:`~zoomrl.envs.vector.ZoomVectorEnv`. Training, validation and testing all search through these.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from zoomrl.data.images import ImageStore, class_objects
from zoomrl.data.voc import VocImage
from zoomrl.envs.oracles import oracle_searches
from zoomrl.envs.vector import records_in_batches
from zoomrl.envs.zoom import NUM_ACTIONS, ZoomEnv, mirror_boxes

if TYPE_CHECKING:  # the envs import no framework; a feature model is only passed through
    from zoomrl.vision.features import FeatureModel


def training_rules(config: Any, demo: bool = False) -> dict[str, Any]:
    """The :class:`~zoomrl.envs.zoom.ImageEpisode` rules of training under ``config`` (the paper's by default;
    see the issue-17 fields of :class:`Config`). Demonstrations keep one search per object: the oracle has no
    demonstration for a state with nothing left (it would trigger there)."""
    return {
        "paint_window": config.train_paint == "window",
        "search_until_miss": config.train_searches == "test" and not demo,
        "nothing_left_reward": config.nothing_left_reward,
        "teach_iou": config.train_trigger_iou,
        "continuous_trigger": config.continuous_trigger,
    }


def flipped(pixels: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image flipped left to right and its boxes mirrored (:func:`zoomrl.envs.zoom.mirror_boxes`)."""
    return np.ascontiguousarray(pixels[:, ::-1]), mirror_boxes(boxes, pixels.shape[1]).reshape(-1, 4)


def epoch_flips(config: Any, epoch: int, indices: Sequence[int]) -> list[bool] | None:
    """Which of ``indices`` 0-based ``epoch`` flips (``flip_images``): each image its own draw, seeded by
    (seed, epoch, image index), so it does not depend on the batch order; None when flips are off."""
    if not config.flip_images:
        return None
    return [bool(np.random.default_rng([config.seed, epoch, int(i), 5]).random() < 0.5) for i in indices]


def make_envs(
    images: Sequence[VocImage],
    store: ImageStore,
    config: Any,
    training: bool,
    indices: Sequence[int],
    features: Any = None,
    max_searches: int | None = None,
    flips: Sequence[bool] | None = None,
    demo: bool = False,
) -> list[ZoomEnv]:
    """One :class:`ZoomEnv` per image of ``indices``, for ``config.class_object``. Training envs follow
    :func:`training_rules` (``demo``: those of the oracle's demonstrations); ``flips[k]`` flips the ``k``-th image
    left to right (its own feature-cache key)."""
    if max_searches is None:
        max_searches = 1 if config.only_first_object else config.max_searches
    rules = training_rules(config, demo) if training else {}
    envs = []
    for k, i in enumerate(indices):
        image = images[i]
        pixels = store.get(image)
        boxes, difficult = class_objects(image, pixels, config.class_object)
        key = image.key
        if flips is not None and flips[k]:
            pixels, boxes = flipped(pixels, boxes)
            key = f"{image.key}:flipped"
        envs.append(
            ZoomEnv(
                pixels,
                boxes,
                difficult,
                features=features,
                image_key=key,
                scale=config.scale_subregion,
                max_steps=config.number_of_steps,
                history_length=config.history_length,
                trigger_iou=config.trigger_iou,
                training=training,
                max_searches=max_searches,
                descriptor_scale=config.descriptor_scale,
                index=i,
                **rules,
            )
        )
    return envs


def greedy_policy(indices: np.ndarray, q: np.ndarray | None, infos: list[dict[str, Any]]) -> np.ndarray:
    """The action with the highest Q-value (ties to the lowest index). A column after the ``NUM_ACTIONS``
    Q-values (the IoU head's prediction, see :func:`agent_outputs`) is not an action."""
    if q is None:
        raise ValueError("the greedy policy needs Q-values")
    return np.argmax(q[:, :NUM_ACTIONS], axis=1)


def run_records(
    images: Sequence[VocImage],
    store: ImageStore,
    config: Any,
    policy: Callable,
    batch: int,
    features: FeatureModel | None = None,
    q_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    scale: float | None = None,
    progress: Callable[[int], None] | None = None,
    oracle: bool = False,
) -> list[dict[str, Any]]:
    """Run ``policy`` on every image, ``batch`` images in lockstep; one record per image, in input order.

    ``oracle`` gives each image one search per object (see :func:`oracle_searches`)."""
    cfg = config if scale is None else config.replace(scale_subregion=scale)
    max_searches = 1 if cfg.only_first_object else cfg.max_searches

    def envs_for(idx: list[int]) -> list[ZoomEnv]:
        if not oracle:
            return make_envs(images, store, cfg, False, idx, features)
        return [
            make_envs(images, store, cfg, False, [i], features, oracle_searches(n_objects(i), max_searches))[0]
            for i in idx
        ]

    def n_objects(i: int) -> int:
        return int((~class_objects(images[i], store.get(images[i]), cfg.class_object)[1]).sum())

    ids = [im.image_id for im in images]
    return records_in_batches(ids, batch, envs_for, features, cfg.descriptor_scale, policy, q_fn, progress)
