"""Training: epochs of epsilon-greedy episodes over the training images, with checkpoints and logs.

:func:`train_epoch` is the run loop (no logging, no saving); :func:`train` wraps it with data loading,
progress, TensorBoard, checkpoints and resume.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from zoomrl.agents.dqn.agent import DQNAgent
from zoomrl.core.geometry import TRIGGER
from zoomrl.experiments.hierarchical.config import Config
from zoomrl.envs.zoom import ImageEpisode
from zoomrl.vision.features import FeatureModel
from zoomrl.data.images import ImageStore, class_objects
from zoomrl.envs.vector import run_lockstep
from zoomrl.data.voc import VocImage


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

    def line(self, epochs: int) -> str:
        return (
            f"epoch {self.epoch}/{epochs}: reward {self.mean_reward:+.2f}  final IoU {self.mean_final_iou:.3f}  "
            f"trigger success {self.trigger_success:.2f}  epsilon {self.epsilon:.2f}  loss {self.loss:.4f}  "
            f"{self.steps} steps, {self.updates} updates, {self.seconds:.1f} s"
        )


def feature_model_for(config: Config, log: Callable[[str], None]) -> FeatureModel:
    """The VGG-16 feature model a run's configuration asks for."""
    from zoomrl.vision.features import build_feature_model

    return build_feature_model(config.variant, config.weights, backbone_batch=config.backbone_batch,
                               cache_mb=config.cache_mb, cache_dir=config.feature_cache,
                               pool45_max_side=config.pool45_max_side, log=log)


def make_episodes(images: Sequence[VocImage], store: ImageStore, config: Config, training: bool,
                  indices: Sequence[int]) -> list[ImageEpisode]:
    """One :class:`ImageEpisode` per image, for ``config.class_object``."""
    episodes = []
    for i in indices:
        image = images[i]
        pixels = store.get(image)
        boxes, difficult = class_objects(image, pixels, config.class_object)
        episodes.append(
            ImageEpisode(
                image.key, pixels, boxes, difficult, scale=config.scale_subregion, max_steps=config.number_of_steps,
                history_length=config.history_length, trigger_iou=config.trigger_iou, training=training,
                max_searches=1 if config.only_first_object else config.max_searches, index=i,
            )
        )
    return episodes


def training_policy(config: Config, epsilon: float, seed: int, epoch: int) -> Callable:
    """Epsilon-greedy with the forced trigger of paper 3.4. Each image draws from its own generator, seeded by
    (seed, epoch, image index), so its choices do not depend on which images run beside it."""
    rngs: dict[int, np.random.Generator] = {}

    def policy(episode: ImageEpisode, q: np.ndarray | None) -> int:
        rng = rngs.setdefault(episode.index, np.random.default_rng([seed, epoch, episode.index]))
        action = DQNAgent.select_action(q if q is not None else np.zeros(6), epsilon, rng)
        if config.force_trigger and episode.target()[1] >= config.trigger_iou:
            return TRIGGER
        return action

    return policy


def train_epoch(
    epoch: int, images: Sequence[VocImage], store: ImageStore, features: FeatureModel, agent: DQNAgent,
    config: Config, progress: Callable[[int], None] | None = None,
) -> EpochStats:
    """One pass over ``images`` in a shuffled order (0-based ``epoch``); returns its statistics."""
    t0 = time.perf_counter()
    epsilon = config.epsilon(epoch)
    order = np.random.default_rng([config.seed, epoch, 7]).permutation(len(images))
    policy = training_policy(config, epsilon, config.seed, epoch)
    losses: list[float] = []
    updates_before = agent.updates
    searches = steps = 0
    rewards: list[float] = []
    final_ious: list[float] = []
    successes = 0

    def after_step(n: int) -> None:
        losses.extend(agent.learn())

    for start in range(0, len(order), config.episode_batch):
        chunk = order[start : start + config.episode_batch]
        episodes = make_episodes(images, store, config, training=True, indices=chunk)
        steps += run_lockstep(episodes, policy, features, agent.q_values, agent.observe, after_step,
                              descriptor_scale=config.descriptor_scale)
        for e in episodes:
            for s in e.searches:
                if not s.actions:
                    continue
                searches += 1
                rewards.append(float(np.sum(s.rewards)))
                final_ious.append(s.final_iou)
                successes += int(s.triggered and s.final_iou >= config.trigger_iou)
        if progress is not None:
            progress(len(chunk))
    seconds = time.perf_counter() - t0
    return EpochStats(
        epoch=epoch + 1,
        mean_reward=float(np.mean(rewards)) if rewards else 0.0,
        mean_final_iou=float(np.mean(final_ious)) if final_ious else 0.0,
        trigger_success=successes / max(searches, 1),
        epsilon=epsilon,
        loss=float(np.mean(losses)) if losses else float("nan"),
        seconds=seconds,
        searches=searches,
        steps=steps,
        updates=agent.updates - updates_before,
        images_per_second=len(images) / max(seconds, 1e-9),
    )


def train(
    config: Config,
    data: Sequence[str | Path],
    image_set: str | None,
    model_dir: str | Path,
    *,
    max_images: int | None = None,
    skip_bad: bool = False,
    resume: bool = False,
    log: Callable[[str], None] = print,
    show_progress: bool = True,
    features: FeatureModel | None = None,
    keep_checkpoints: int | None = 3,
) -> dict[str, Any]:
    """Train one agent for ``config.class_object``; returns a summary (run folder, history, final weights).

    ``features`` replaces the VGG-16 feature model of ``config.variant`` (tests use a cheap one)."""
    from tqdm import tqdm

    from zoomrl.agents.dqn.checkpoint import load_training_state, save_checkpoint
    from zoomrl.core.seeding import seed_everything
    from zoomrl.data.images import load_images
    from zoomrl.eval.plots import plot_training_curves
    from zoomrl.core.tblog import ScalarLogger

    seed_everything(config.seed)
    run_dir = Path(model_dir) / config.class_object
    images = load_images(data, image_set, config.class_object, skip_bad, max_images, log)
    positives = [im for im in images if len(im.boxes(config.class_object, include_difficult=False))]
    if len(positives) < len(images):
        # As in the paper, an agent learns from images that hold its class: on the others every action is
        # penalised and nothing can be found.
        log(f"data: training on the {len(positives)} of {len(images)} images that hold a non-difficult "
            f"'{config.class_object}'")
        images = positives
    n_objects = sum(len(im.boxes(config.class_object, include_difficult=False)) for im in images)
    log(f"data: {len(images)} images, {n_objects} '{config.class_object}' objects from {', '.join(map(str, data))}")
    features = features if features is not None else feature_model_for(config, log)
    agent = DQNAgent(features.descriptor_size + 6 * config.history_length, config, seed=config.seed)
    start_epoch, history = 0, []
    if resume:
        start_epoch, history = load_training_state(run_dir, agent, config)
        if start_epoch:
            log(f"resume: continuing {run_dir} after epoch {start_epoch}")
        else:
            log(f"resume: nothing to resume in {run_dir}, starting afresh")
    elif (run_dir / "training_state.npz").exists():
        log(f"note: {run_dir} already holds a run; it will be overwritten epoch by epoch (use --resume to continue)")
    config.extra["weights_used"] = getattr(features, "weights_name", config.weights)
    config.extra["data"] = [str(d) for d in data]
    config.extra["image_set"] = image_set
    config.save(run_dir / "config.json")
    store = ImageStore()
    tb = ScalarLogger(run_dir / "tensorboard", log)
    weights = None
    try:
        for epoch in range(start_epoch, config.epochs):
            with tqdm(total=len(images), desc=f"epoch {epoch + 1}/{config.epochs}", unit="img",
                      disable=not show_progress, leave=False) as bar:
                stats = train_epoch(epoch, images, store, features, agent, config, progress=bar.update)
            history.append(asdict(stats))
            log(stats.line(config.epochs))
            tb.scalars(stats.epoch, {k: v for k, v in asdict(stats).items() if k != "epoch"})
            weights = save_checkpoint(run_dir, stats.epoch, agent, config, history)
            features.flush()
            plot_training_curves(history, run_dir / "training_curves.png")
    finally:
        tb.close()
        features.close()
    return {"run_dir": str(run_dir), "summary": f"checkpoints and training_curves.png in {run_dir}", "history": history, "weights": str(weights) if weights else None,
            "feature_stats": features.stats()}
