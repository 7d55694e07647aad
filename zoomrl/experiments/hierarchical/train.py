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

from zoomrl.agents.dqn.agent import DQNAgent, epsilon_greedy
from zoomrl.data.images import ImageStore, class_objects
from zoomrl.data.voc import VocImage
from zoomrl.envs.zoom import NUM_ACTIONS, TRIGGER, ZoomEnv
from zoomrl.experiments import dqn_loop
from zoomrl.experiments.dqn_loop import store_transitions  # noqa: F401 - re-exported
from zoomrl.experiments.hierarchical.config import RESULT_FIELDS, Config
from zoomrl.vision.features import FeatureModel

Log = Callable[[str], None]


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


def feature_model_for(config: Config, log: Log) -> FeatureModel:
    """The VGG-16 feature model a run's configuration asks for."""
    from zoomrl.vision.features import build_feature_model

    return build_feature_model(config.variant, config.weights, backbone_batch=config.backbone_batch,
                               cache_mb=config.cache_mb, cache_dir=config.feature_cache,
                               pool45_max_side=config.pool45_max_side, log=log)


def run_meta(config: Config, state_size: int) -> dict[str, Any]:
    """What a checkpoint of this run is for (stored in its files, checked when they are loaded)."""
    return {"family": "hierarchical", "variant": config.variant, "class_object": config.class_object,
            "state_size": state_size, "num_actions": NUM_ACTIONS, "scale_subregion": config.scale_subregion,
            "number_of_steps": config.number_of_steps, "iou_head": config.iou_weight > 0}


def make_envs(images: Sequence[VocImage], store: ImageStore, config: Config, training: bool,
              indices: Sequence[int], features: Any = None, max_searches: int | None = None) -> list[ZoomEnv]:
    """One :class:`ZoomEnv` per image of ``indices``, for ``config.class_object``."""
    if max_searches is None:
        max_searches = 1 if config.only_first_object else config.max_searches
    envs = []
    for i in indices:
        image = images[i]
        pixels = store.get(image)
        boxes, difficult = class_objects(image, pixels, config.class_object)
        envs.append(ZoomEnv(pixels, boxes, difficult, features=features, image_key=image.key,
                            scale=config.scale_subregion, max_steps=config.number_of_steps,
                            history_length=config.history_length, trigger_iou=config.trigger_iou,
                            training=training, max_searches=max_searches, descriptor_scale=config.descriptor_scale,
                            index=i))
    return envs


def training_policy(config: Config, epsilon: float, seed: int, epoch: int) -> Callable:
    """Epsilon-greedy with the forced trigger of paper 3.4. Each image draws from its own generator, seeded by
    (seed, epoch, image index), so its choices do not depend on which images run beside it."""
    rngs: dict[int, np.random.Generator] = {}

    def policy(indices: np.ndarray, q: np.ndarray | None, infos: list[dict[str, Any]]) -> np.ndarray:
        out = np.empty(len(indices), dtype=np.int64)
        for j, info in enumerate(infos):
            image_index = int(info["image_index"])
            rng = rngs.setdefault(image_index, np.random.default_rng([seed, epoch, image_index]))
            action = epsilon_greedy(q[j] if q is not None else np.zeros(NUM_ACTIONS), epsilon, rng)
            out[j] = TRIGGER if config.force_trigger and info["iou"] >= config.trigger_iou else action
        return out

    return policy


def collect_demonstrations(images: Sequence[VocImage], store: ImageStore, features: FeatureModel,
                           agent: DQNAgent, config: Config, progress: Callable[[int], None] | None = None) -> int:
    """Run the oracle once over the training images (training behaviour) and store its transitions as
    demonstrations; returns how many steps it took."""
    return dqn_loop.collect_demonstrations(len(images),
                                           lambda idx: make_envs(images, store, config, True, idx, features),
                                           features, agent, config.episode_batch, config.descriptor_scale, progress)


def train_epoch(epoch: int, images: Sequence[VocImage], store: ImageStore, features: FeatureModel, agent: DQNAgent,
                config: Config, progress: Callable[[int], None] | None = None) -> EpochStats:
    """One pass over ``images`` in a shuffled order (0-based ``epoch``); returns its statistics."""
    t0 = time.perf_counter()
    epsilon = config.epsilon(epoch)
    updates_before = agent.updates
    steps, losses, envs = dqn_loop.epoch_pass(
        epoch, len(images), lambda idx: make_envs(images, store, config, True, idx, features),
        training_policy(config, epsilon, config.seed, epoch), features, agent, config, progress)
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


def training_images(data: Sequence[str | Path], image_set: str | None, config: Config, skip_bad: bool,
                    max_images: int | None, log: Log) -> list[VocImage]:
    """The images that hold the class (as in the paper: on the others every action is penalised and nothing
    can be found)."""
    from zoomrl.data.images import load_images

    images = load_images(data, image_set, config.class_object, skip_bad, max_images, log)
    positives = [im for im in images if len(im.boxes(config.class_object, include_difficult=False))]
    if len(positives) < len(images):
        log(f"data: training on the {len(positives)} of {len(images)} images that hold a non-difficult "
            f"'{config.class_object}'")
    if not positives:
        raise ValueError(f"no training image holds a non-difficult '{config.class_object}' in "
                         f"{', '.join(map(str, data))}")
    n_objects = sum(len(im.boxes(config.class_object, include_difficult=False)) for im in positives)
    log(f"data: {len(positives)} images, {n_objects} '{config.class_object}' objects from "
        f"{', '.join(map(str, data))}")
    return positives


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
    """Train one agent for ``config.class_object``; returns a summary (run folder, history, final weights).

    ``features`` replaces the VGG-16 feature model of ``config.variant`` (tests use a cheap one)."""
    from tqdm import tqdm

    from zoomrl.agents.dqn.checkpoint import load_state, save_epoch, stash_previous_run
    from zoomrl.agents.seeding import seed_everything
    from zoomrl.core.checkpoint import Checkpointer, RunLock
    from zoomrl.core.tblog import ScalarLogger
    from zoomrl.eval.plots import plot_training_curves

    seed_everything(config.seed)
    run_dir = Path(model_dir) / config.class_object
    with RunLock(run_dir):
        images = training_images(data, image_set, config, skip_bad, max_images, log)
        features = features if features is not None else feature_model_for(config, log)
        state_size = features.descriptor_size + NUM_ACTIONS * config.history_length
        meta = run_meta(config, state_size)
        agent = DQNAgent(state_size, NUM_ACTIONS, config, seed=config.seed)
        config.extra.update({"weights_used": getattr(features, "weights_name", config.weights),
                             "data": [str(d) for d in data], "image_set": image_set})
        checkpointer = Checkpointer(run_dir, keep=keep_checkpoints, metric="trigger_success")
        start_epoch, history = 0, []
        if resume:
            start_epoch, history = load_state(run_dir, agent, config, meta, RESULT_FIELDS)
            log(f"resume: continuing {run_dir} after epoch {start_epoch}" if start_epoch
                else f"resume: nothing to resume in {run_dir}, starting afresh")
        if start_epoch >= config.epochs:
            log(f"nothing to train: {run_dir} has {start_epoch} epochs, --epochs is {config.epochs}; "
                f"no checkpoint written")
            features.close()
            return {"run_dir": str(run_dir), "history": history, "weights": None,
                    "summary": f"no epoch to run; nothing written in {run_dir}", "feature_stats": features.stats()}
        if not start_epoch:
            stash_previous_run(run_dir, log)
        store = ImageStore()
        tb = ScalarLogger(run_dir / "tensorboard", log)
        weights = None
        try:
            if start_epoch == 0 and agent.demos is not None:
                with tqdm(total=len(images), desc="oracle demonstrations", unit="img", disable=not show_progress,
                          leave=False) as bar:
                    n = collect_demonstrations(images, store, features, agent, config, progress=bar.update)
                log(f"demonstrations: {len(agent.demos)} transitions from {n} oracle steps")
                if config.bc_epochs:
                    bc = agent.pretrain(config.bc_epochs * config.bc_updates_per_epoch)
                    log(f"behaviour-cloning warm-up: {len(bc)} updates, loss {bc[0]:.3f} -> {bc[-1]:.3f}")
            for epoch in range(start_epoch, config.epochs):
                with tqdm(total=len(images), desc=f"epoch {epoch + 1}/{config.epochs}", unit="img",
                          disable=not show_progress, leave=False) as bar:
                    try:
                        stats = train_epoch(epoch, images, store, features, agent, config, progress=bar.update)
                    except FloatingPointError as exc:
                        raise ValueError(f"epoch {epoch + 1}: {exc}; nothing of this epoch was saved (lower "
                                         f"--learning-rate?)") from None
                history.append(asdict(stats))
                log(stats.line(config.epochs))
                tb.scalars(stats.epoch, {k: v for k, v in asdict(stats).items() if k != "epoch"})
                weights = save_epoch(checkpointer, stats.epoch, agent, config, history, meta, stats.trigger_success)
                features.flush()
                plot_training_curves(history, run_dir / "training_curves.png")
        finally:
            tb.close()
            features.close()
    return {"run_dir": str(run_dir), "history": history, "weights": str(weights) if weights else None,
            "summary": f"epochs {start_epoch + 1}-{config.epochs} saved; checkpoints and training_curves.png in "
                       f"{run_dir}", "feature_stats": features.stats()}
