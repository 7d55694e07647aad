"""Training the active agent: epochs of guided epsilon-greedy searches over the training images.

:func:`train` loads data, features and agent, optionally collects oracle demonstrations and runs the
behaviour-cloning warm-up, then runs :func:`train_epoch` per epoch and saves a checkpoint after each
(``epoch_<k>.weights.h5``, ``training_state.npz``, ``config.json``, ``latest.json``; ``--resume`` continues exactly).
:func:`train_epoch` is the run loop: images run ``episode_batch`` at a time in a
:class:`~zoomrl.envs.vector.ZoomVectorEnv` of :class:`~zoomrl.envs.active.ActiveEnv`, every step stores its
transitions and runs the DQN updates due.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoomrl.core.runner import EpochResult
from zoomrl.data.images import ImageStore, class_objects
from zoomrl.data.voc import VocImage
from zoomrl.envs.active import TRIGGER, ActiveEnv, extra_state_size
from zoomrl.experiments import dqn_loop
from zoomrl.experiments.active.config import RESULT_FIELDS, Config
from zoomrl.experiments.dqn_loop import store_transitions  # noqa: F401 - re-exported
from zoomrl.experiments.dqn_trainee import DQNTrainee, train_dqn

if TYPE_CHECKING:
    from zoomrl.agents.dqn.agent import DQNAgent, Explorer

Log = Callable[[str], None]


@dataclass
class EpochStats:
    """One line of the training log."""

    epoch: int
    mean_reward: float
    mean_final_iou: float
    trigger_success: float
    """Share of searches that ended with a trigger at IoU >= trigger_iou."""
    mean_steps: float
    """Mean actions per search."""
    epsilon: float
    loss: float
    seconds: float
    searches: int
    steps: int
    updates: int

    def line(self, epochs: int) -> str:
        return (
            f"epoch {self.epoch}/{epochs}: reward {self.mean_reward:+.2f}  final IoU {self.mean_final_iou:.3f}  "
            f"trigger success {self.trigger_success:.2f}  steps/search {self.mean_steps:.1f}  "
            f"epsilon {self.epsilon:.2f}  loss {self.loss:.4f}  {self.steps} steps, {self.updates} updates, "
            f"{self.seconds:.1f} s"
        )


def feature_model_for(config: Config, log: Log) -> Any:
    """VGG-16 ``block5_pool`` of the context box (the Image Zooms model), the 84x84 pixels for ``scratch``, RoIAlign
    on one ``block5_conv3`` map per (masked) image for ``roi``, a CLIP image encoder's embedding for ``clip``."""
    if config.features == "scratch":
        from zoomrl.vision.pixels import PixelCrops

        return PixelCrops()
    if config.features == "roi":
        from zoomrl.vision.roi import build_roi_feature_model

        return build_roi_feature_model(
            config.weights,
            cache_mb=config.cache_mb,
            cache_dir=config.feature_cache,
            max_side=config.roi_max_side,
            log=log,
        )
    if config.features == "clip":
        from zoomrl.vision.clip import build_clip_feature_model

        return build_clip_feature_model(
            config.clip_preset,
            random_weights=config.weights == "none",
            batch_size=config.backbone_batch,
            cache_mb=config.cache_mb,
            log=log,
        )
    from zoomrl.vision.features import build_feature_model

    return build_feature_model(
        "image_zooms",
        config.weights,
        backbone_batch=config.backbone_batch,
        cache_mb=config.cache_mb,
        cache_dir=config.feature_cache,
        log=log,
    )


def build_agent(config: Config, state_size: int) -> DQNAgent:
    """The DQN agent: the MLP over VGG features, or the CNN of :mod:`zoomrl.agents.dqn.scratch`."""
    from zoomrl.agents.dqn.agent import DQNAgent

    build = None
    if config.features == "scratch":
        from zoomrl.agents.dqn.scratch import build_scratch_qnetwork

        build = build_scratch_qnetwork
    return DQNAgent(state_size, config.num_actions, config, seed=config.seed, build_network=build)


def state_size_of(config: Config, features: Any) -> int:
    """The descriptor, the action history and the options' geometry and step count."""
    return (
        features.descriptor_size
        + config.num_actions * config.history_length
        + extra_state_size(config.state_geometry, config.state_steps)
    )


def run_meta(config: Config, state_size: int) -> dict[str, Any]:
    """What a checkpoint of this run is for (stored in its files, checked when loaded)."""
    return {
        "family": "active",
        "variant": config.features,
        "class_object": config.class_object,
        "state_size": state_size,
        "num_actions": config.num_actions,
    }


def make_envs(
    images: Sequence[VocImage],
    store: ImageStore,
    config: Config,
    training: bool,
    indices: Sequence[int],
    features: Any = None,
    **extra: Any,
) -> list[ActiveEnv]:
    """One :class:`ActiveEnv` per image of ``indices``, for ``config.class_object`` (``extra``: more
    :class:`~zoomrl.envs.active.ActiveEpisode` arguments)."""
    envs = []
    for i in indices:
        image = images[i]
        pixels = store.get(image)
        boxes, difficult = class_objects(image, pixels, config.class_object)
        envs.append(
            ActiveEnv(
                pixels,
                boxes,
                difficult,
                features=features,
                image_key=image.key,
                descriptor_scale=config.descriptor_scale,
                index=int(i),
                **config.env_kwargs(training),
                **extra,
            )
        )
    return envs


def guided_choice(
    q: np.ndarray,
    epsilon: float,
    positive: Sequence[int],
    rng: np.random.Generator,
    guided: bool = True,
    explore_trigger: float = 0.0,
) -> int:
    """Epsilon-greedy with guided exploration: with probability ``epsilon`` a uniform draw among ``positive``
    (the actions whose reward would be positive), or among all ``len(q)`` actions when there is none or
    ``guided`` is off; else ``argmax q``. ``explore_trigger``: an exploratory action is the trigger with this
    probability, wherever the box is (so wrong triggers are tried too). The draw order is fixed (one uniform, one
    integer, and when exploring with ``explore_trigger > 0`` one more uniform)."""
    explore = rng.random() < epsilon
    draw = int(rng.integers(1 << 30))
    if not explore:
        return int(np.argmax(q))
    if explore_trigger > 0 and rng.random() < explore_trigger:
        return TRIGGER
    choices = list(positive) if guided and len(positive) else list(range(len(q)))
    return int(choices[draw % len(choices)])


def training_policy(config: Config, epsilon: float, seed: int, epoch: int) -> Explorer:
    """The agent's behaviour policy (an :data:`~zoomrl.agents.dqn.agent.Explorer`): guided
    epsilon-greedy; each image draws from its own generator, seeded by (seed, epoch, image index), so its choices do
    not depend on which images run beside it."""
    rngs: dict[int, np.random.Generator] = {}

    def policy(q: np.ndarray, infos: list[dict[str, Any]]) -> np.ndarray:
        out = np.empty(len(q), dtype=np.int64)
        for j, info in enumerate(infos):
            k = int(info["image_index"])
            rng = rngs.setdefault(k, np.random.default_rng([seed, epoch, k, 3]))
            out[j] = guided_choice(
                q[j],
                epsilon,
                info["positive_actions"],
                rng,
                config.guided_exploration,
                config.explore_trigger,
            )
        return out

    return policy


def collect_demonstrations(
    images: Sequence[VocImage],
    store: ImageStore,
    features: Any,
    agent: DQNAgent,
    config: Config,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Run the oracle (largest IoU gain, trigger at tau) over the training images; store its transitions as
    demonstrations. Returns its steps."""
    return dqn_loop.collect_demonstrations(
        len(images),
        lambda idx: make_envs(images, store, config, True, idx, features),
        features,
        agent,
        config.episode_batch,
        config.descriptor_scale,
        progress,
    )


def train_epoch(
    epoch: int,
    images: Sequence[VocImage],
    store: ImageStore,
    features: Any,
    agent: DQNAgent,
    config: Config,
    progress: Callable[[int], None] | None = None,
) -> EpochStats:
    """One pass over ``images`` in a shuffled order (0-based ``epoch``)."""
    t0 = time.perf_counter()
    epsilon = config.epsilon(epoch)
    updates_before = agent.updates
    steps, losses, envs = dqn_loop.epoch_pass(
        epoch,
        len(images),
        lambda idx: make_envs(images, store, config, True, idx, features),
        training_policy(config, epsilon, config.seed, epoch),
        features,
        agent,
        config,
        progress,
    )
    done = [s for env in envs for s in env.episode.searches if s.actions]
    rewards = [float(np.sum(s.rewards)) for s in done]
    final_ious = [s.final_iou for s in done]
    lengths = [len(s.actions) for s in done]
    successes = sum(int(s.triggered and s.final_iou >= config.trigger_iou) for s in done)
    searches = len(rewards)
    return EpochStats(
        epoch=epoch + 1,
        mean_reward=float(np.mean(rewards)) if rewards else 0.0,
        mean_final_iou=float(np.mean(final_ious)) if final_ious else 0.0,
        trigger_success=successes / max(searches, 1),
        mean_steps=float(np.mean(lengths)) if lengths else 0.0,
        epsilon=epsilon,
        loss=float(np.mean(losses)) if losses else float("nan"),
        seconds=time.perf_counter() - t0,
        searches=searches,
        steps=steps,
        updates=agent.updates - updates_before,
    )


def training_images(
    data: Sequence[str | Path], image_set: str | None, config: Config, skip_bad: bool, max_images: int | None, log: Log
) -> list[VocImage]:
    """The images that hold a non-difficult object of the class."""
    from zoomrl.data.images import load_images

    images = load_images(data, image_set, config.class_object, skip_bad, max_images, log)
    positives = [im for im in images if len(im.boxes(config.class_object, include_difficult=False))]
    if not positives:
        raise ValueError(
            f"no training image holds a non-difficult '{config.class_object}' in {', '.join(map(str, data))}"
        )
    n_objects = sum(len(im.boxes(config.class_object, include_difficult=False)) for im in positives)
    log(
        f"data: training on {len(positives)} of {len(images)} images ({n_objects} '{config.class_object}' objects) "
        f"from {', '.join(map(str, data))}"
    )
    return positives


class ActiveTrainee(DQNTrainee):
    """The run driver's view of an active run."""

    @property
    def plot_title(self) -> str:  # type: ignore[override]
        return f"active ({self.config.features}), class {self.config.class_object}"

    def collect_demonstrations(self, progress: Callable[[int], None]) -> int:
        return collect_demonstrations(self.images, self.store, self.features, self.agent, self.config, progress)

    def run_epoch(self, epoch: int, progress: Callable[[int], None]) -> EpochResult:
        stats = train_epoch(epoch, self.images, self.store, self.features, self.agent, self.config, progress)
        return EpochResult(asdict(stats), stats.line(self.config.epochs), stats.trigger_success)


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
    features: Any = None,
    keep_checkpoints: int | None = 3,
) -> dict[str, Any]:
    """Train one agent for ``config.class_object`` into ``model_dir/<class>``; returns a summary. The run driver
    (:mod:`zoomrl.core.runner`) owns the folder, resume and checkpoints.

    ``features`` replaces the configured feature model (tests use a cheap one)."""
    run_dir = Path(model_dir) / config.class_object

    def setup() -> ActiveTrainee:
        images = training_images(data, image_set, config, skip_bad, max_images, log)
        model = features if features is not None else feature_model_for(config, log)
        state_size = state_size_of(config, model)
        agent = build_agent(config, state_size)
        config.extra.update(
            {
                "weights_used": getattr(model, "weights_name", config.weights),
                "data": [str(d) for d in data],
                "image_set": image_set,
                "max_images": max_images,
            }
        )
        return ActiveTrainee(config, images, model, agent, run_meta(config, state_size), run_dir, log)

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


__all__ = [
    "train",
    "train_epoch",
    "guided_choice",
    "training_policy",
    "make_envs",
    "build_agent",
    "feature_model_for",
    "run_meta",
    "TRIGGER",
]
