"""What the value-based families (hierarchical, active) share on top of the run driver
(:class:`zoomrl.core.runner.Runner`): a DQN agent, its feature model and training images as a
:class:`~zoomrl.core.runner.Trainee` (oracle demonstrations and the behaviour-cloning warm-up on a fresh start,
checked weights files, the training curves), and :func:`train_dqn`, the whole ``train`` around it.

A family subclasses :class:`DQNTrainee` with its epoch (:meth:`DQNTrainee.run_epoch`) and its demonstrations
(:meth:`DQNTrainee.collect_demonstrations`), and passes :func:`train_dqn` a ``setup`` that builds it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoomrl.agents.dqn.checkpoint import META_KEYS, load_weights_checked, write_weights
from zoomrl.core.config import ConfigBase
from zoomrl.core.runner import BarFactory, EpochResult, Progress, Runner
from zoomrl.data.images import ImageStore

Log = Callable[[str], None]


class DQNTrainee:
    """A DQN family's run for the driver. ``metric``: the score of the ``best`` checkpoint."""

    metric = "trigger_success"
    plot_title: str | None = None
    """The training curves' title (None: the plot's own)."""

    def __init__(
        self,
        config: Any,
        images: Sequence[Any],
        features: Any,
        agent: Any,
        meta: Mapping[str, Any],
        run_dir: Path,
        log: Log,
    ) -> None:
        self.config, self.images, self.features, self.agent = config, images, features, agent
        self.meta, self.run_dir, self.log = meta, Path(run_dir), log
        self.store = ImageStore()

    @property
    def units(self) -> int:
        return len(self.images)

    def collect_demonstrations(self, progress: Progress) -> int:
        """Store the oracle's transitions over the training images as demonstrations; returns its steps."""
        raise NotImplementedError

    def run_epoch(self, epoch: int, progress: Progress) -> EpochResult:
        raise NotImplementedError

    def init_fresh(self, bar: BarFactory) -> None:
        """Oracle demonstrations, then the behaviour-cloning warm-up (when the configuration asks for them)."""
        agent, config = self.agent, self.config
        if agent.demos is None:
            return
        with bar(len(self.images), "oracle demonstrations") as b:
            n = self.collect_demonstrations(b.update)
        self.log(f"demonstrations: {len(agent.demos)} transitions from {n} oracle steps")
        if config.bc_epochs:
            bc = agent.pretrain(config.bc_epochs * config.bc_updates_per_epoch)
            self.log(f"behaviour-cloning warm-up: {len(bc)} updates, loss {bc[0]:.3f} -> {bc[-1]:.3f}")

    def state(self) -> dict[str, np.ndarray]:
        return self.agent.get_state()

    def restore(self, state: Mapping[str, np.ndarray]) -> None:
        self.agent.set_state(state)

    def save_weights(self, path: Path) -> None:
        write_weights(self.agent, path, self.meta)

    def load_weights(self, path: Path) -> None:
        load_weights_checked(path, self.agent, self.meta)

    def before_save(self, history: Sequence[Mapping[str, Any]]) -> None:
        pass

    def after_save(self, history: Sequence[Mapping[str, Any]]) -> None:
        # Looked up at call time: tests replace the plot (a second per epoch).
        from zoomrl.eval import plots

        self.features.flush()
        kw = {} if self.plot_title is None else {"title": self.plot_title}
        plots.plot_training_curves(history, self.run_dir / "training_curves.png", **kw)

    def close(self) -> None:
        self.features.close()


def train_dqn(
    config: ConfigBase,
    run_dir: Path,
    setup: Callable[[], DQNTrainee],
    fields: Sequence[str],
    *,
    resume: bool,
    keep: int | None,
    log: Log,
    show_progress: bool,
) -> dict[str, Any]:
    """Seed, then drive ``setup()``'s trainee for ``config.epochs`` in ``run_dir``; returns the summary (run folder,
    history, final weights, seconds, the feature model's statistics)."""
    from zoomrl.agents.seeding import seed_everything

    seed_everything(config.seed)
    runner = Runner(
        run_dir,
        config,
        config.epochs,
        fields=fields,
        resume=resume,
        keep=keep,
        log=log,
        show_progress=show_progress,
        meta_keys=META_KEYS,
    )
    out = runner.train(setup)
    stats = out.trainee.features.stats()
    if out.weights is None:
        return {
            "run_dir": str(run_dir),
            "history": out.history,
            "weights": None,
            "seconds": 0.0,
            "summary": f"no epoch to run; nothing written in {run_dir}",
            "feature_stats": stats,
        }
    return {
        "run_dir": str(run_dir),
        "history": out.history,
        "weights": str(out.weights),
        "seconds": out.seconds,
        "summary": f"epochs {out.start_epoch + 1}-{config.epochs} in {out.seconds / 60:.1f} min; checkpoints "
        f"and training_curves.png in {run_dir}",
        "feature_stats": stats,
    }
