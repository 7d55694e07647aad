"""Training the hierarchical agent: what the family adds to the shared DQN run (:mod:`zoomrl.experiments.dqn_trainee`):
its feature model (VGG-16, pooled to ``descriptor_pool``), flipped images, the forced trigger, demonstrations on
both orientations, and a validation split tested after every epoch that picks the best checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoomrl.agents.dqn.agent import DQNAgent, Explorer, agent_outputs, epsilon_greedy, per_image_explorer
from zoomrl.data.images import ImageStore
from zoomrl.data.voc import VocImage
from zoomrl.envs.zoom import NUM_ACTIONS, TRIGGER, ZoomEnv
from zoomrl.envs.zoom_runs import epoch_flips, greedy_policy, make_envs, run_records
from zoomrl.experiments.dqn_trainee import DQNTrainee, train_family, training_split
from zoomrl.experiments.hierarchical.config import RESULT_FIELDS, Config
from zoomrl.vision.features import FeatureModel
from zoomrl.vision.pooling import pooled

Log = Callable[[str], None]

__all__ = ["HierarchicalTrainee", "train", "training_policy", "validate"]


def training_policy(config: Config, epsilon: float, seed: int, epoch: int) -> Explorer:
    """The agent's behaviour policy (an :data:`~zoomrl.agents.dqn.agent.Explorer`): epsilon-greedy
    with the forced trigger of paper 3.4. Each image draws from its own generator, seeded by
    (seed, epoch, image index), so its choices do not depend on which images run beside it."""

    def choose(q: np.ndarray, info: Mapping[str, Any], rng: np.random.Generator) -> int:
        action = epsilon_greedy(q, epsilon, rng)
        # info["teach_trigger"]: IoU >= trigger_iou (the paper), or train_trigger_iou's rule when set; an info
        # without it (not a ZoomEnv's) falls back to the paper's rule.
        taught = info.get("teach_trigger", info["iou"] >= config.trigger_iou)
        return TRIGGER if config.force_trigger and taught else action

    return per_image_explorer(choose, [seed, epoch])


def validate(
    images: Sequence[VocImage],
    store: ImageStore,
    features: FeatureModel,
    agent: DQNAgent,
    config: Config,
    scored: Callable[[list, Sequence[VocImage]], list] | None = None,
) -> dict[str, float]:
    """The agent's AP (area) on ``images`` with the test protocol (greedy, testing's searches and painting,
    ``test_batch`` images in lockstep), for every detection score it can give; ``scored`` adds to the records (the
    run's region scores: :meth:`~zoomrl.experiments.dqn_trainee.DQNTrainee.scored`)."""
    from zoomrl.eval.detection import ap_by_score

    records = run_records(images, store, config, greedy_policy, config.test_batch, features, agent_outputs(agent))
    if scored is not None:
        records = scored(records, images)
    return ap_by_score(records)


class HierarchicalTrainee(DQNTrainee):
    """The run driver's view of a hierarchical run; with a validation split, every epoch ends with the test
    protocol on it, the best epoch is the best validation AP, and ``validation.json`` records them."""

    result_fields = RESULT_FIELDS
    validates = True

    @classmethod
    def load(cls, data: Any, image_set: Any, config: Config, *args: Any) -> tuple[list[VocImage], list[VocImage]]:
        return training_split(data, image_set, config, *args, config.val_fraction, config.train_negatives)

    @classmethod
    def build(cls, config: Config, features: Any, log: Log) -> tuple[Any, DQNAgent, int]:
        # The compact descriptor (descriptor_pool) wraps whatever feature model the run uses.
        model = pooled(features if features is not None else config.feature_model(log), config.descriptor_pool)
        state_size = model.descriptor_size + NUM_ACTIONS * config.history_length
        return model, DQNAgent(state_size, NUM_ACTIONS, config, seed=config.seed), state_size

    @classmethod
    def run_meta(cls, config: Config, state_size: int) -> dict[str, Any]:
        return {
            "family": "hierarchical",
            "variant": config.variant,
            "class_object": config.class_object,
            "state_size": state_size,
            "num_actions": NUM_ACTIONS,
            "scale_subregion": config.scale_subregion,
            "number_of_steps": config.number_of_steps,
            "iou_head": config.iou_weight > 0,
        }

    def envs_for(self, epoch: int, indices: Sequence[int]) -> list[ZoomEnv]:
        flips = epoch_flips(self.config, epoch, indices)
        return make_envs(self.images, self.store, self.config, True, indices, self.features, flips=flips)

    def explorer(self, epoch: int, epsilon: float) -> Explorer:
        return training_policy(self.config, epsilon, self.config.seed, epoch)

    @property
    def positives(self) -> list[VocImage]:
        """The training images that hold the class: the oracle demonstrates only where there is an object."""
        return [im for im in self.images if len(im.boxes(self.config.class_object, include_difficult=False))]

    @property
    def demo_units(self) -> int:
        # With flip_images, every image holding the class and its mirror.
        return (2 if self.config.flip_images else 1) * len(self.positives)

    def demo_envs(self, indices: Sequence[int]) -> list[ZoomEnv]:
        positives, n = self.positives, len(self.positives)
        # Index k < n is image k, k >= n its mirror; one search per object (demo=True).
        idx, flips = [k % n for k in indices], [k >= n for k in indices]
        return make_envs(positives, self.store, self.config, True, idx, self.features, flips=flips, demo=True)

    def validation_aps(self) -> dict[str, float]:
        return validate(self.val_images, self.store, self.features, self.agent, self.config, scored=self.scored)


def train(config: Config, data: Sequence[str | Path], image_set: str | None, model_dir: str | Path, **kw: Any) -> dict:
    """:func:`~zoomrl.experiments.dqn_trainee.train_family` of the hierarchical family (``features`` replaces the
    VGG-16 feature model of ``config.variant``: tests use a cheap one)."""
    return train_family(HierarchicalTrainee, config, data, image_set, model_dir, **kw)
