"""Training the active agent: what the family adds to the shared DQN run (:mod:`zoomrl.experiments.dqn_trainee`):
its feature models (VGG-16 of the box with context, pixels for a CNN trained end to end, RoIAlign, CLIP), the
options' state size, guided exploration, and the steps per search in each epoch's statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoomrl.core.runner import EpochResult
from zoomrl.data.images import ImageStore, class_objects
from zoomrl.data.voc import VocImage
from zoomrl.envs.active import TRIGGER, ActiveEnv, extra_state_size
from zoomrl.experiments import dqn_loop
from zoomrl.experiments.active.config import RESULT_FIELDS, Config
from zoomrl.experiments.dqn_trainee import DQNTrainee, EpochStats, train_family

if TYPE_CHECKING:
    from zoomrl.agents.dqn.agent import DQNAgent, Explorer

Log = Callable[[str], None]


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


class ActiveTrainee(DQNTrainee):
    """The run driver's view of an active run."""

    result_fields = RESULT_FIELDS
    recorded = ("max_images",)

    @property
    def plot_title(self) -> str:  # type: ignore[override]
        return f"active ({self.config.features}), class {self.config.class_object}"

    @classmethod
    def build(cls, config: Config, features: Any, log: Log) -> tuple[Any, DQNAgent, int]:
        model = features if features is not None else feature_model_for(config, log)
        state_size = state_size_of(config, model)
        return model, build_agent(config, state_size), state_size

    run_meta = staticmethod(run_meta)  # type: ignore[assignment]

    def envs_for(self, epoch: int, indices: Sequence[int]) -> list[ActiveEnv]:
        return make_envs(self.images, self.store, self.config, True, indices, self.features)

    def explorer(self, epoch: int, epsilon: float) -> Explorer:
        return training_policy(self.config, epsilon, self.config.seed, epoch)

    def collect_demonstrations(self, progress: Callable[[int], None]) -> int:
        return collect_demonstrations(self.images, self.store, self.features, self.agent, self.config, progress)

    def finish_epoch(self, stats: EpochStats, envs: list) -> EpochResult:
        lengths = [len(s.actions) for env in envs for s in env.episode.searches if s.actions]
        stats.extra["mean_steps"] = float(np.mean(lengths)) if lengths else 0.0
        line = stats.line(self.config.epochs, middle=f"steps/search {stats.extra['mean_steps']:.1f}  ")
        return EpochResult(stats.record(), line, stats.trigger_success)


def train(config: Config, data: Sequence[str | Path], image_set: str | None, model_dir: str | Path, **kw: Any) -> dict:
    """:func:`~zoomrl.experiments.dqn_trainee.train_family` of the active family (``features`` replaces the
    configured feature model: tests use a cheap one)."""
    return train_family(ActiveTrainee, config, data, image_set, model_dir, **kw)


__all__ = [
    "train",
    "guided_choice",
    "training_policy",
    "make_envs",
    "build_agent",
    "feature_model_for",
    "run_meta",
    "TRIGGER",
]
