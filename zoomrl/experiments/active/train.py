"""Training the active agent: what the family adds to the shared DQN run (:mod:`zoomrl.experiments.dqn_trainee`):
its feature models (VGG-16 of the box with context, pixels for a CNN trained end to end, RoIAlign, CLIP), the
options' state size, guided exploration, and the steps per search in each epoch's statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoomrl.core.runner import EpochResult
from zoomrl.data.voc import VocImage
from zoomrl.envs.active import TRIGGER, ActiveEnv, context_window, extra_state_size
from zoomrl.envs.active_runs import guided_choice, make_envs, run_records, test_policy
from zoomrl.experiments.active.config import RESULT_FIELDS, Config
from zoomrl.experiments.dqn_trainee import DQNTrainee, EpochStats, train_family, training_split

if TYPE_CHECKING:
    from zoomrl.agents.dqn.agent import DQNAgent, Explorer

Log = Callable[[str], None]


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
        "iou_head": config.iou_weight > 0,
    }


def training_policy(config: Config, epsilon: float, seed: int, epoch: int) -> Explorer:
    """The agent's behaviour policy (an :data:`~zoomrl.agents.dqn.agent.Explorer`): guided
    epsilon-greedy; each image draws from its own generator, seeded by (seed, epoch, image index), so its choices do
    not depend on which images run beside it."""
    from zoomrl.agents.dqn.agent import per_image_explorer

    def choose(q: np.ndarray, info: Mapping[str, Any], rng: np.random.Generator) -> int:
        positive = info["positive_actions"]
        return guided_choice(q, epsilon, positive, rng, config.guided_exploration, config.explore_trigger)

    return per_image_explorer(choose, [seed, epoch], [3])


def validate(
    images: Sequence[VocImage],
    store: Any,
    features: Any,
    agent: DQNAgent,
    config: Config,
    scored: Callable[[list, Sequence[VocImage]], list] | None = None,
) -> tuple[dict[str, float], dict[str, float]]:
    """The agent's APs (area) on ``images`` with the test protocol (:func:`test_policy`, ``test_steps`` per image,
    ``test_batch`` images in lockstep), from one run: ``(terminal regions by detection score, all attended regions
    by attended-box score)`` (every score the records support; AAR after the ``aar_nms`` suppression and the
    ``aar_vote`` voting). ``scored`` adds to the records (the run's region scores:
    :meth:`~zoomrl.experiments.dqn_trainee.DQNTrainee.scored`)."""
    from zoomrl.agents.dqn.agent import agent_outputs
    from zoomrl.eval.detection import ap_by_score
    from zoomrl.eval.proposals import attended_by_score

    policy = test_policy(config)
    records = run_records(images, store, config, policy, config.test_batch, features, agent_outputs(agent))
    if scored is not None:
        records = scored(records, images)
    aar = attended_by_score(records, TRIGGER, config.aar_nms, vote_iou=config.aar_vote)
    return ap_by_score(records), {name: float(ev["ap_area"]) for name, ev in aar.items()}


class ActiveTrainee(DQNTrainee):
    """The run driver's view of an active run; with a validation split (``val_fraction``), every ``val_every``
    epochs end with the test protocol on it (the detection score, the ``best`` checkpoint, and the score of all
    attended regions: :attr:`validation_sets` ``aar``)."""

    result_fields = RESULT_FIELDS
    recorded = ("max_images",)
    validates = True
    validation_sets = ("aar",)

    @classmethod
    def load(cls, data: Any, image_set: Any, config: Config, *args: Any) -> tuple[list[VocImage], list[VocImage]]:
        return training_split(data, image_set, config, *args, config.val_fraction)

    @property
    def plot_title(self) -> str:  # type: ignore[override]
        return f"active ({self.config.features}), class {self.config.class_object}"

    @classmethod
    def build(cls, config: Config, features: Any, log: Log) -> tuple[Any, DQNAgent, int]:
        model = features if features is not None else config.feature_model(log)
        state_size = state_size_of(config, model)
        return model, build_agent(config, state_size), state_size

    run_meta = staticmethod(run_meta)  # type: ignore[assignment]

    def envs_for(self, epoch: int, indices: Sequence[int]) -> list[ActiveEnv]:
        return make_envs(self.images, self.store, self.config, True, indices, self.features)

    def explorer(self, epoch: int, epsilon: float) -> Explorer:
        return training_policy(self.config, epsilon, self.config.seed, epoch)

    def finish_epoch(self, stats: EpochStats, envs: list) -> EpochResult:
        lengths = [len(s.actions) for env in envs for s in env.episode.searches if s.actions]
        stats.extra["mean_steps"] = float(np.mean(lengths)) if lengths else 0.0
        suffix, score = self.validation(stats)
        line = stats.line(self.config.epochs, middle=f"steps/search {stats.extra['mean_steps']:.1f}  ", suffix=suffix)
        return EpochResult(stats.record(), line, score)

    def validation_aps(self) -> dict[str, float]:
        return self.validation_set_aps()[""]

    def validation_set_aps(self) -> dict[str, dict[str, float]]:
        terminal, attended = validate(
            self.val_images, self.store, self.features, self.agent, self.config, scored=self.scored
        )
        return {"": terminal, "aar": attended}

    @staticmethod
    def view_of(config: Config) -> Callable[[Sequence[float], int, int], tuple[float, float, float, float]]:
        # The box with its R-CNN context, as the agent's descriptor sees it.
        return lambda window, width, height: context_window(window, width, height, config.context)


def train(config: Config, data: Sequence[str | Path], image_set: str | None, model_dir: str | Path, **kw: Any) -> dict:
    """:func:`~zoomrl.experiments.dqn_trainee.train_family` of the active family (``features`` replaces the
    configured feature model: tests use a cheap one)."""
    return train_family(ActiveTrainee, config, data, image_set, model_dir, **kw)


__all__ = [
    "ActiveTrainee",
    "TRIGGER",
    "build_agent",
    "run_meta",
    "state_size_of",
    "train",
    "training_policy",
    "validate",
]
