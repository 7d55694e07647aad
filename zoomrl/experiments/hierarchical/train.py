"""Training the hierarchical agent: what the family adds to the shared DQN run (:mod:`zoomrl.experiments.dqn_trainee`):
its feature model (VGG-16, pooled to ``descriptor_pool``), flipped images, the forced trigger, demonstrations on
both orientations, and a validation split tested after every epoch that picks the best checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoomrl.agents.dqn.agent import DQNAgent, Explorer, epsilon_greedy
from zoomrl.core.io import write_json
from zoomrl.core.runner import EpochResult
from zoomrl.data.images import ImageStore
from zoomrl.data.voc import VocImage
from zoomrl.envs.zoom import NUM_ACTIONS, TRIGGER, ZoomEnv
from zoomrl.experiments import dqn_loop
from zoomrl.experiments.dqn_trainee import DQNTrainee, EpochStats, dqn_epoch, split_validation, train_family
from zoomrl.experiments.hierarchical.config import RESULT_FIELDS, Config
from zoomrl.experiments.hierarchical.search import (  # noqa: F401 - make_envs, run_meta, ... re-exported
    Log,
    agent_outputs,
    feature_model_for,
    flipped,
    greedy_policy,
    make_envs,
    run_meta,
    run_records,
    training_rules,
)
from zoomrl.vision.features import FeatureModel
from zoomrl.vision.pooling import pooled

__all__ = ["split_validation", "train", "train_epoch", "training_policy"]


def epoch_flips(config: Config, epoch: int, indices: Sequence[int]) -> list[bool] | None:
    """Which of ``indices`` 0-based ``epoch`` flips (``flip_images``): each image its own draw, seeded by
    (seed, epoch, image index), so it does not depend on the batch order; None when flips are off."""
    if not config.flip_images:
        return None
    return [bool(np.random.default_rng([config.seed, epoch, int(i), 5]).random() < 0.5) for i in indices]


def training_policy(config: Config, epsilon: float, seed: int, epoch: int) -> Explorer:
    """The agent's behaviour policy (an :data:`~zoomrl.agents.dqn.agent.Explorer`): epsilon-greedy
    with the forced trigger of paper 3.4. Each image draws from its own generator, seeded by
    (seed, epoch, image index), so its choices do not depend on which images run beside it."""
    rngs: dict[int, np.random.Generator] = {}

    def policy(q: np.ndarray, infos: list[dict[str, Any]]) -> np.ndarray:
        out = np.empty(len(q), dtype=np.int64)
        for j, info in enumerate(infos):
            image_index = int(info["image_index"])
            rng = rngs.setdefault(image_index, np.random.default_rng([seed, epoch, image_index]))
            action = epsilon_greedy(q[j], epsilon, rng)
            # info["teach_trigger"]: IoU >= trigger_iou (the paper), or train_trigger_iou's rule when set; an info
            # without it (not a ZoomEnv's) falls back to the paper's rule.
            taught = info.get("teach_trigger", info["iou"] >= config.trigger_iou)
            out[j] = TRIGGER if config.force_trigger and taught else action
        return out

    return policy


def collect_demonstrations(
    images: Sequence[VocImage],
    store: ImageStore,
    features: FeatureModel,
    agent: DQNAgent,
    config: Config,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Run the oracle once over the training images that hold the class (training behaviour; with
    ``flip_images`` over each image and its mirror) and store its transitions as demonstrations; returns how
    many steps it took."""
    positives = [im for im in images if len(im.boxes(config.class_object, include_difficult=False))]
    n = len(positives)
    copies = 2 if config.flip_images else 1

    def envs_for(idx: Sequence[int]) -> list[ZoomEnv]:
        # Index k < n is image k, k >= n its mirror.
        return [make_envs(positives, store, config, True, [k % n], features, flips=[k >= n], demo=True)[0] for k in idx]

    def tick(count: int) -> None:
        if progress is not None:
            progress(count / copies)

    return dqn_loop.collect_demonstrations(
        copies * n, envs_for, features, agent, config.episode_batch, config.descriptor_scale, tick
    )


def train_epoch(
    epoch: int,
    images: Sequence[VocImage],
    store: ImageStore,
    features: FeatureModel,
    agent: DQNAgent,
    config: Config,
    progress: Callable[[int], None] | None = None,
) -> EpochStats:
    """One pass over ``images`` in a shuffled order (0-based ``epoch``), flipped per ``flip_images``."""

    def envs_for(idx: Sequence[int]) -> list[ZoomEnv]:
        return make_envs(images, store, config, True, idx, features, flips=epoch_flips(config, epoch, idx))

    explorer = training_policy(config, config.epsilon(epoch), config.seed, epoch)
    return dqn_epoch(epoch, len(images), envs_for, explorer, features, agent, config, progress)[0]


def training_split(
    data: Sequence[str | Path], image_set: str | None, config: Config, skip_bad: bool, max_images: int | None, log: Log
) -> tuple[list[VocImage], list[VocImage]]:
    """``(training images, validation images)`` (:func:`~zoomrl.experiments.dqn_trainee.training_split` with the
    run's ``val_fraction`` and ``train_negatives``)."""
    from zoomrl.experiments.dqn_trainee import training_split as split

    return split(data, image_set, config, skip_bad, max_images, log, config.val_fraction, config.train_negatives)


def validate(
    images: Sequence[VocImage], store: ImageStore, features: FeatureModel, agent: DQNAgent, config: Config
) -> dict[str, float]:
    """The agent's AP (area) on ``images`` with the test protocol (greedy, testing's searches and painting,
    ``test_batch`` images in lockstep), for every detection score it can give."""
    from zoomrl.eval.detection import available_scores, evaluate, rescored

    records = run_records(images, store, config, greedy_policy, config.test_batch, features, agent_outputs(agent))
    return {name: float(evaluate(rescored(records, name))["ap_area"]) for name in available_scores(records)}


def best_of_scores(ap_by_score: dict[str, float]) -> tuple[str, float]:
    """The detection score with the highest AP (the first in :data:`~zoomrl.eval.detection.DETECTION_SCORES`'s
    order on ties), and that AP; ``("trigger_q", 0.0)`` when the agent never triggered."""
    if not ap_by_score:
        return "trigger_q", 0.0
    name = max(ap_by_score, key=lambda k: (ap_by_score[k], -list(ap_by_score).index(k)))
    return name, ap_by_score[name]


VALIDATION_FILE = "validation.json"


def validation_record(history: Sequence[dict[str, Any]], val_images: Sequence[VocImage]) -> dict[str, Any]:
    """What ``validation.json`` holds: every epoch's validation APs by score, and the best epoch (the first with
    the highest AP, as the checkpointer's ``best``) with its score."""
    epochs = [
        {"epoch": h["epoch"], "ap_by_score": h["val_ap_by_score"], "score": h["val_score"], "ap": h["val_ap"]}
        for h in history
        if h.get("val_ap") is not None
    ]
    best = None
    for e in epochs:
        if best is None or e["ap"] > best["ap"]:
            best = e
    return {
        "metric": "ap_area",
        "images": [im.image_id for im in val_images],
        "epochs": epochs,
        "best": None if best is None else {"epoch": best["epoch"], "score": best["score"], "ap": best["ap"]},
    }


class HierarchicalTrainee(DQNTrainee):
    """The run driver's view of a hierarchical run; with a validation split, every epoch ends with the test
    protocol on it, the best epoch is the best validation AP, and ``validation.json`` records them."""

    result_fields = RESULT_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metric = "validation_ap" if self.val_images else "trigger_success"

    @classmethod
    def load(cls, *args: Any) -> tuple[list[VocImage], list[VocImage]]:
        return training_split(*args)

    @classmethod
    def build(cls, config: Config, features: Any, log: Log) -> tuple[Any, DQNAgent, int]:
        # The compact descriptor (descriptor_pool) wraps whatever feature model the run uses.
        model = pooled(features if features is not None else feature_model_for(config, log), config.descriptor_pool)
        state_size = model.descriptor_size + NUM_ACTIONS * config.history_length
        return model, DQNAgent(state_size, NUM_ACTIONS, config, seed=config.seed), state_size

    run_meta = staticmethod(run_meta)  # type: ignore[assignment]

    def envs_for(self, epoch: int, indices: Sequence[int]) -> list[ZoomEnv]:
        flips = epoch_flips(self.config, epoch, indices)
        return make_envs(self.images, self.store, self.config, True, indices, self.features, flips=flips)

    def explorer(self, epoch: int, epsilon: float) -> Explorer:
        return training_policy(self.config, epsilon, self.config.seed, epoch)

    def collect_demonstrations(self, progress: Callable[[int], None]) -> int:
        return collect_demonstrations(self.images, self.store, self.features, self.agent, self.config, progress)

    def finish_epoch(self, stats: EpochStats, envs: list) -> EpochResult:
        val: dict[str, Any] = {"val_ap": None, "val_score": None, "val_ap_by_score": None, "val_seconds": None}
        if self.val_images:
            t_val = time.perf_counter()
            val["val_ap_by_score"] = validate(self.val_images, self.store, self.features, self.agent, self.config)
            val["val_seconds"] = time.perf_counter() - t_val
            val["val_score"], val["val_ap"] = best_of_scores(val["val_ap_by_score"])
        stats.extra.update(val)
        suffix = (
            ""
            if val["val_ap"] is None
            else f"  validation AP {val['val_ap']:.3f} ({val['val_score']}, {val['val_seconds'] or 0:.1f} s)"
        )
        score = val["val_ap"] if self.val_images else stats.trigger_success
        return EpochResult(stats.record(), stats.line(self.config.epochs, suffix=suffix), score)

    def before_save(self, history: Sequence[dict[str, Any]]) -> None:
        if self.val_images:
            # config.json records the validation's choice too (the same numbers as validation.json).
            self.config.extra["validation"] = validation_record(history, self.val_images)["best"]

    def after_save(self, history: Sequence[dict[str, Any]]) -> None:
        if self.val_images:
            # Written after the checkpoint; a resumed run rewrites it from the saved history.
            write_json(self.run_dir / VALIDATION_FILE, validation_record(history, self.val_images))
        super().after_save(history)


def train(config: Config, data: Sequence[str | Path], image_set: str | None, model_dir: str | Path, **kw: Any) -> dict:
    """:func:`~zoomrl.experiments.dqn_trainee.train_family` of the hierarchical family (``features`` replaces the
    VGG-16 feature model of ``config.variant``: tests use a cheap one)."""
    return train_family(HierarchicalTrainee, config, data, image_set, model_dir, **kw)
