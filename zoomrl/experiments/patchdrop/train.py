"""``python -m zoomrl patchdrop train``: the four stages as one run of the core run driver (:mod:`zoomrl.core.runner`),
its epochs going through the stages in order; ``--stage N`` rewinds the run to the end of stage N - 1 and trains up to
the end of stage N. The run folder, the weights file's groups and what may change: ``docs/patchdrop.md``, Stages."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from zoomrl.agents.patchdrop import stages as st
from zoomrl.agents.patchdrop.config import STAGES
from zoomrl.core.checkpoint import read_latest
from zoomrl.core.runner import CONFIG_FILE, CheckpointError, EpochResult, Log, Progress, Runner, Trainee
from zoomrl.data.patch_digits import NUM_CLASSES, augment, load_for
from zoomrl.experiments.patchdrop.config import TEST_FIELDS, PatchDropConfig


class PatchDropTrainee(Trainee):
    """The run's networks for the driver: ``run_epoch`` finds the stage of the epoch, starts it (its agents, from
    the finished stages' networks, :func:`stage_agents`) at its first epoch, and trains each of its agents one
    pass of whole batches over the training images. No score, so no ``best`` checkpoint."""

    metric = "none"

    def __init__(self, cfg: PatchDropConfig, data: tuple[np.ndarray, np.ndarray], run_dir: Path | None = None) -> None:
        self.cfg, (self.images, self.labels) = cfg, data
        self.run_dir = run_dir  # where training_curves.png goes after every epoch (None: not drawn)
        self.meta = {"family": "patchdrop", "dataset": cfg.dataset}
        self.final: dict[str, list[np.ndarray]] = {}  # the finished stages' networks, by group
        self.finished: list[str] = []
        self.stage: str | None = None
        self.agents: list[Any] = []
        self.next_epoch = 0
        self.loaded: dict[str, list[np.ndarray]] = {}

    def batches(self, stage: str) -> int:
        return st.whole_batches(len(self.images), self.cfg.stage_batch(stage))

    @property
    def units(self) -> int:
        done = self.next_epoch >= self.cfg.run_epochs()
        stage = STAGES[-1] if done else STAGES[self.cfg.stage_at(self.next_epoch)[0]]
        return self.batches(stage) * (len(self.cfg.sigma_curve) if stage == "pretrain" else 1)

    def start(self, stage: str) -> None:
        """Build ``stage``'s agents from the finished stages' networks (:func:`.stages.stage_agents`)."""
        shape, classes = self.images.shape[1:], NUM_CLASSES[self.cfg.dataset]
        self.agents = st.stage_agents(self.cfg, stage, self.final, shape, classes, self.batches(stage))
        self.stage = stage

    def run_epoch(self, epoch: int, progress: Progress) -> EpochResult:
        k, e = self.cfg.stage_at(epoch)
        stage, n = STAGES[k], self.cfg.stage_epochs(STAGES[k])
        if self.stage != stage:
            self.start(stage)
        results = [self.agent_epoch(a, stage, progress) for a in self.agents]
        summary = {
            key if len(self.agents) == 1 else f"sigma{a.sigma:g}_{key}": round(v, 4)
            for a, r in zip(self.agents, results)
            for key, v in r.items()
        }
        line = f"stage {k + 1} ({stage}) epoch {e}/{n}: " + ", ".join(f"{a} {b:g}" for a, b in summary.items())
        if e == n:  # the stage's networks are final: later stages start from them, testing reads them
            if self.cfg.precise_bn:
                self.precise_bn(k, stage)
                line += "; BatchNorm statistics re-estimated with the final weights (precise_bn)"
            self.final.update(st.stage_groups(stage, self.agents))
            self.finished.append(stage)
            self.stage, self.agents = None, []
            line += f"; stage {k + 1} finished ({n} epochs on {len(self.images)} images)"
        self.next_epoch = epoch + 1
        return EpochResult({"epoch": epoch + 1, "stage": stage, "stage_epoch": e, **summary}, line)

    def precise_bn(self, k: int, stage: str) -> None:
        """Every agent's trained networks' BatchNorm statistics from one pass over the training images with the
        final weights (:meth:`PatchDropAgent.recalibrate_batchnorm`), drawn from ``(seed, stage, agent)``."""
        for j, agent in enumerate(self.agents):
            seed = int(np.random.SeedSequence([self.cfg.seed, k + 1, j, 1]).generate_state(1)[0])
            agent.recalibrate_batchnorm(self.images, self.cfg.stage_batch(stage), seed)

    def agent_epoch(self, agent: Any, stage: str, progress: Progress) -> dict[str, float]:
        flip = stage == "classifiers" and self.cfg.augment and self.cfg.dataset != "digits"
        size = self.cfg.stage_batch(stage)
        return st.stage_epoch(agent, self.images, self.labels, size, progress, augment if flip else None)

    def save_weights(self, path: Path) -> None:
        current = st.stage_groups(self.stage, self.agents) if self.stage else {}
        st.write_groups(path, {**self.final, **current}, self.finished)

    def after_save(self, history: Any) -> None:
        """The run's learning curves so far (``training_curves.png``: every stage's losses, greedy reward, patches
        kept and alpha against the run epoch, :func:`zoomrl.eval.patchdrop.plot_history`)."""
        if self.run_dir is not None:
            from zoomrl.eval.patchdrop import plot_history

            plot_history(history, self.run_dir / "training_curves.png", f"PatchDrop ({self.cfg.preset})")

    def load_weights(self, path: Path) -> None:
        try:
            self.loaded, self.finished = st.read_groups(path)
        except (OSError, ValueError) as exc:
            raise CheckpointError(str(exc)) from None

    def state(self) -> dict[str, np.ndarray]:
        return st.agents_state(self.agents)

    def restore(self, state: Mapping[str, np.ndarray]) -> None:
        """After :meth:`load_weights`: the finished stages' networks, and a stage cut short rebuilt as it started,
        then given its saved weights, optimizers and generators."""
        self.next_epoch = done = int(state["epoch"])
        self.final = {g: w for g, w in self.loaded.items() if g.split("/")[0] in self.finished}
        k, e = self.cfg.stage_at(done - 1)
        if e == self.cfg.stage_epochs(STAGES[k]) and STAGES[k] in self.finished:
            return
        self.start(STAGES[k])
        st.restore_agents(self.agents, STAGES[k], self.loaded, state)


def train(
    cfg: PatchDropConfig,
    model_dir: str | Path,
    stage: str | None = None,
    resume: bool = False,
    keep: int | None = 3,
    quiet: bool = False,
    log: Log = print,
) -> Any:
    """Train the run (or only ``stage``) in ``model_dir`` through the run driver; returns its result."""
    from zoomrl.agents.patchdrop.agent import describe_execution
    from zoomrl.agents.seeding import seed_everything

    model_dir = Path(model_dir)
    seed_everything(cfg.seed)
    log(describe_execution(cfg))
    epochs, retrain, changeable = st.run_plan(cfg, stage, resume, set(TEST_FIELDS))

    def setup() -> PatchDropTrainee:
        latest = read_latest(model_dir) if (resume or retrain) else None
        saved_path = model_dir / CONFIG_FILE
        saved = PatchDropConfig.load(saved_path) if latest and saved_path.is_file() else None
        st.continue_run(model_dir, cfg, saved, latest, stage, retrain)
        data = load_for(cfg, "train")
        log(f"data: {cfg.dataset}, {len(data[0])} training images of {data[0].shape[1:]}")
        return PatchDropTrainee(cfg, data, model_dir)

    runner = Runner(
        model_dir,
        cfg,
        epochs,
        changeable=changeable,
        resume=resume or retrain,
        keep=keep,
        log=log,
        show_progress=not quiet,
    )
    return runner.train(setup)


__all__ = ["PatchDropTrainee", "train"]
