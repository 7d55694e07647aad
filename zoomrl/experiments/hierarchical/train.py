"""Training the hierarchical agent: epochs of epsilon-greedy searches over the training images.

Read top to bottom: :func:`train` loads data, features and agent, optionally collects oracle demonstrations and
runs the behaviour-cloning warm-up, then calls :func:`train_epoch` per epoch and saves a checkpoint after each.
:func:`train_epoch` is the run loop (no logging, no saving): images run ``episode_batch`` at a time in a
:class:`~zoomrl.envs.vector.ZoomVectorEnv`, every step stores its transitions and runs the updates due.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
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
from zoomrl.experiments.dqn_loop import store_transitions  # noqa: F401 - re-exported
from zoomrl.experiments.dqn_trainee import DQNTrainee, train_dqn
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


@dataclass
class EpochStats:
    """One line of the training log (and one point of each TensorBoard scalar)."""

    epoch: int
    mean_reward: float
    """Mean total reward of a search."""
    mean_final_iou: float
    """Mean IoU, with the best remaining object, of the window each search ended on."""
    trigger_success: float
    """Share of searches that ended with a trigger at IoU >= trigger_iou."""
    epsilon: float
    loss: float
    seconds: float
    searches: int
    steps: int
    updates: int
    images_per_second: float
    val_ap: float | None = None
    """With a validation split: the best AP (area) on it over the detection scores, after this epoch."""
    val_score: str | None = None
    """The detection score that gave ``val_ap``."""
    val_ap_by_score: dict[str, float] | None = None
    """Validation AP (area) of every detection score."""
    val_seconds: float | None = None
    """What the validation took (not in ``seconds``)."""

    def line(self, epochs: int) -> str:
        val = (
            ""
            if self.val_ap is None
            else f"  validation AP {self.val_ap:.3f} ({self.val_score}, {self.val_seconds or 0:.1f} s)"
        )
        return (
            f"epoch {self.epoch}/{epochs}: reward {self.mean_reward:+.2f}  final IoU {self.mean_final_iou:.3f}  "
            f"trigger success {self.trigger_success:.2f}  epsilon {self.epsilon:.2f}  loss {self.loss:.4f}  "
            f"{self.steps} steps, {self.updates} updates, {self.seconds:.1f} s{val}"
        )


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
    """One pass over ``images`` in a shuffled order (0-based ``epoch``); returns its statistics."""
    t0 = time.perf_counter()
    epsilon = config.epsilon(epoch)
    updates_before = agent.updates
    steps, losses, envs = dqn_loop.epoch_pass(
        epoch,
        len(images),
        lambda idx: make_envs(images, store, config, True, idx, features, flips=epoch_flips(config, epoch, idx)),
        training_policy(config, epsilon, config.seed, epoch),
        features,
        agent,
        config,
        progress,
    )
    searches = [s for env in envs for s in env.episode.searches if s.actions]
    rewards = [float(np.sum(s.rewards)) for s in searches]
    successes = sum(int(s.triggered and s.final_iou >= config.trigger_iou) for s in searches)
    seconds = time.perf_counter() - t0
    return EpochStats(
        epoch=epoch + 1,
        mean_reward=float(np.mean(rewards)) if rewards else 0.0,
        mean_final_iou=float(np.mean([s.final_iou for s in searches])) if searches else 0.0,
        trigger_success=successes / max(len(searches), 1),
        epsilon=epsilon,
        loss=float(np.mean(losses)) if losses else float("nan"),
        seconds=seconds,
        searches=len(searches),
        steps=steps,
        updates=agent.updates - updates_before,
        images_per_second=len(images) / max(seconds, 1e-9),
    )


def split_validation(images: Sequence[VocImage], fraction: float, seed: int) -> tuple[list[VocImage], list[VocImage]]:
    """``(training, validation)``: ``round(fraction * n)`` images (at least 1, at most n - 1, none for 0) go to
    validation, those whose hash of ``(seed, image id)`` ranks lowest. The choice depends on the seed and the
    image ids alone, not on their order; both lists keep the input order."""
    import hashlib

    if fraction <= 0 or len(images) < 2:
        return list(images), []
    n_val = min(max(int(round(fraction * len(images))), 1), len(images) - 1)

    def rank(im: VocImage) -> tuple[str, str]:
        return hashlib.sha256(f"{seed}:{im.image_id}".encode()).hexdigest(), im.key

    chosen = {id(im) for im in sorted(images, key=rank)[:n_val]}
    return [im for im in images if id(im) not in chosen], [im for im in images if id(im) in chosen]


def training_split(
    data: Sequence[str | Path], image_set: str | None, config: Config, skip_bad: bool, max_images: int | None, log: Log
) -> tuple[list[VocImage], list[VocImage]]:
    """``(training images, validation images)``: the validation split (``val_fraction``, every image of it, as a
    test set) is held out first; training then keeps the images that hold the class (as in the paper: on the
    others every action is penalised and nothing can be found), or all of them with ``train_negatives``."""
    from zoomrl.data.images import load_images

    images = load_images(data, image_set, config.class_object, skip_bad, max_images, log)
    images, val = split_validation(images, config.val_fraction, config.seed)
    if val:
        n_val_objects = sum(len(im.boxes(config.class_object, include_difficult=False)) for im in val)
        log(
            f"data: {len(val)} images ({n_val_objects} '{config.class_object}' objects) held out for validation "
            f"(--val-fraction {config.val_fraction:g})"
        )
    return _training_part(images, data, config, log), val


def training_images(
    data: Sequence[str | Path], image_set: str | None, config: Config, skip_bad: bool, max_images: int | None, log: Log
) -> list[VocImage]:
    """The training part of :func:`training_split`."""
    return training_split(data, image_set, config, skip_bad, max_images, log)[0]


def _training_part(images: list[VocImage], data: Sequence[str | Path], config: Config, log: Log) -> list[VocImage]:
    positives = [im for im in images if len(im.boxes(config.class_object, include_difficult=False))]
    if not positives:
        raise ValueError(
            f"no training image holds a non-difficult '{config.class_object}' in {', '.join(map(str, data))}"
        )
    chosen = images if config.train_negatives else positives
    if len(positives) < len(images):
        log(
            f"data: training on all {len(images)} images, {len(images) - len(positives)} of them without a "
            f"'{config.class_object}' (--train-negatives)"
            if config.train_negatives
            else f"data: training on the {len(positives)} of {len(images)} images that hold a non-difficult "
            f"'{config.class_object}'"
        )
    n_objects = sum(len(im.boxes(config.class_object, include_difficult=False)) for im in positives)
    log(f"data: {len(chosen)} images, {n_objects} '{config.class_object}' objects from {', '.join(map(str, data))}")
    return chosen


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

    def __init__(
        self,
        config: Config,
        images: Sequence[VocImage],
        val_images: Sequence[VocImage],
        features: FeatureModel,
        agent: DQNAgent,
        meta: dict[str, Any],
        run_dir: Path,
        log: Log,
    ) -> None:
        super().__init__(config, images, features, agent, meta, run_dir, log)
        self.val_images = val_images
        self.metric = "validation_ap" if val_images else "trigger_success"

    def collect_demonstrations(self, progress: Callable[[int], None]) -> int:
        return collect_demonstrations(self.images, self.store, self.features, self.agent, self.config, progress)

    def run_epoch(self, epoch: int, progress: Callable[[int], None]) -> EpochResult:
        stats = train_epoch(epoch, self.images, self.store, self.features, self.agent, self.config, progress)
        if self.val_images:
            t_val = time.perf_counter()
            stats.val_ap_by_score = validate(self.val_images, self.store, self.features, self.agent, self.config)
            stats.val_seconds = time.perf_counter() - t_val
            stats.val_score, stats.val_ap = best_of_scores(stats.val_ap_by_score)
        return EpochResult(
            asdict(stats), stats.line(self.config.epochs), stats.val_ap if self.val_images else stats.trigger_success
        )

    def before_save(self, history: Sequence[dict[str, Any]]) -> None:
        if self.val_images:
            # config.json records the validation's choice too (the same numbers as validation.json).
            self.config.extra["validation"] = validation_record(history, self.val_images)["best"]

    def after_save(self, history: Sequence[dict[str, Any]]) -> None:
        if self.val_images:
            # Written after the checkpoint; a resumed run rewrites it from the saved history.
            write_json(self.run_dir / VALIDATION_FILE, validation_record(history, self.val_images))
        super().after_save(history)


def train(
    config: Config,
    data: Sequence[str | Path],
    image_set: str | None,
    model_dir: str | Path,
    *,
    max_images: int | None = None,
    skip_bad: bool = False,
    resume: bool = False,
    log: Log = print,
    show_progress: bool = True,
    features: FeatureModel | None = None,
    keep_checkpoints: int | None = 3,
) -> dict[str, Any]:
    """Train one agent for ``config.class_object`` into ``model_dir/<class>``; returns a summary (run folder,
    history, final weights). The run driver (:mod:`zoomrl.core.runner`) owns the folder, resume and checkpoints.

    ``features`` replaces the VGG-16 feature model of ``config.variant`` (tests use a cheap one)."""
    run_dir = Path(model_dir) / config.class_object

    def setup() -> HierarchicalTrainee:
        images, val_images = training_split(data, image_set, config, skip_bad, max_images, log)
        # The compact descriptor (descriptor_pool) wraps whatever feature model the run uses.
        model = pooled(features if features is not None else feature_model_for(config, log), config.descriptor_pool)
        state_size = model.descriptor_size + NUM_ACTIONS * config.history_length
        agent = DQNAgent(state_size, NUM_ACTIONS, config, seed=config.seed)
        config.extra.update(
            {
                "weights_used": getattr(model, "weights_name", config.weights),
                "data": [str(d) for d in data],
                "image_set": image_set,
            }
        )
        return HierarchicalTrainee(config, images, val_images, model, agent, run_meta(config, state_size), run_dir, log)

    return train_dqn(
        config,
        run_dir,
        setup,
        RESULT_FIELDS,
        resume=resume,
        keep=keep_checkpoints,
        log=log,
        show_progress=show_progress,
    )
