"""``python -m zoomrl glimpse train``: train every model of ``config.models``, each in ``<model-dir>/<model>/``.

Each model is a :class:`GlimpseTrainee` driven by the core run driver (:class:`zoomrl.core.runner.Runner`), which
owns the run folder (lock, ``--resume`` against the allow-list :data:`RESUMABLE`, stash, checkpoints, TensorBoard;
``latest.json`` also holds the per-epoch history, as documented before the move); ``training_curves.png`` is this
family's. Each epoch's data and the model's random generator are seeded from ``(seed, epoch)``, so ``--resume``
after ``N - 1`` epochs and one more epoch gives the same weights as ``N`` epochs straight.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from zoomrl.agents.ram.agent import RamAgent, WholeImageAgent, build_agent, speed_line
from zoomrl.agents.ram.config import glimpse_size_warning, learning_rate_at, loc_std_at
from zoomrl.agents.seeding import seed_everything
from zoomrl.core.runner import AgentTrainee, EpochResult, Progress, Runner
from zoomrl.data.splits import TaskData, epoch_seed
from zoomrl.eval.glimpse_plots import plot_training_history
from zoomrl.experiments.glimpse.config import GlimpseConfig
from zoomrl.experiments.glimpse.features import task_data

# Settings that may change between a run and its resumption (they do not change what was trained so far).
RESUMABLE = {"epochs", "baseline_epochs", "models", "mc_samples", "draw_max", "test_size", "eval_split", "preset"}


def epochs_of(name: str, cfg: GlimpseConfig) -> int:
    return cfg.epochs if name in ("ram", "random") else cfg.baseline_epochs


class GlimpseTrainee(AgentTrainee):
    """One model of the family (``ram``, ``random``, ``cnn`` or ``mlp``) for the run driver: each epoch is one pass
    of equal batches over that epoch's canvases. No score is given, so no ``best`` checkpoint, as before. Its state
    and weights are the agent's; no work before epoch 1, before a checkpoint or at the end (inherited)."""

    metric = "train_score"

    def __init__(
        self,
        name: str,
        cfg: GlimpseConfig,
        data: TaskData,
        agent: RamAgent | WholeImageAgent,
        epochs: int,
        quiet: bool,
        run_dir: Path,
    ) -> None:
        self.name, self.cfg, self.data, self.agent = name, cfg, data, agent
        self.epochs, self.quiet, self.run_dir = epochs, quiet, run_dir
        self.meta = {"model": name}

    @property
    def units(self) -> int:
        """Canvases trained per epoch (the progress bar's total)."""
        n = self.data.train_size()
        bs = min(self.cfg.batch_size, n)
        return n // bs * bs if bs else 0

    def run_epoch(self, epoch: int, progress: Progress) -> EpochResult:
        agent, cfg, name = self.agent, self.cfg, self.name
        t0 = time.time()
        split = self.data.train_epoch(epoch)
        annealed = name == "ram" and cfg.loc_std_final > 0
        if annealed:
            agent.set_loc_std(loc_std_at(cfg, epoch, self.epochs))
        decayed = name == "ram" and cfg.learning_rate_final > 0
        if decayed:
            agent.set_learning_rate(learning_rate_at(cfg, epoch, self.epochs))
        agent.begin_epoch(epoch_seed(cfg.seed, epoch))
        sums = agent.learn_pass(split.inputs, split.targets, cfg.batch_size, progress, name)
        stats = {
            "epoch": epoch + 1,
            "seconds": round(time.time() - t0, 2),
            **{k: round(float(v), 5) for k, v in sums.items()},
        }
        if annealed:
            stats["loc_std"] = round(loc_std_at(cfg, epoch, self.epochs), 5)
        if decayed:
            stats["learning_rate"] = float(f"{learning_rate_at(cfg, epoch, self.epochs):.6g}")
        line = ""  # --quiet: the last epoch's line only
        if not self.quiet or epoch + 1 == self.epochs:
            parts = " ".join(f"{k} {v:.4f}" for k, v in stats.items() if k not in ("epoch", "seconds"))
            line = f"{name} epoch {epoch + 1}/{self.epochs}: {parts} ({stats['seconds']:.1f} s)"
        return EpochResult(stats, line)

    def after_save(self, history: Sequence[Mapping[str, Any]]) -> None:
        if history[-1]["epoch"] == self.epochs:  # the curves once, at the end (a plot costs about a second)
            plot_training_history(history, self.run_dir / "training_curves.png")


def train_model(
    name: str,
    cfg: GlimpseConfig,
    data: TaskData,
    run_dir: Path,
    resume: bool = False,
    keep: int | None = 3,
    quiet: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train one model (``ram``, ``random``, ``cnn`` or ``mlp``) in ``run_dir`` through the run driver
    (:mod:`zoomrl.core.runner`: lock, resume, stash, checkpoints); returns its summary."""
    seed_everything(cfg.seed)
    epochs = epochs_of(name, cfg)

    def setup() -> GlimpseTrainee:
        agent = build_agent(name, cfg, data.image_shape(), data.n_outputs, task=cfg.task, seed=cfg.seed)
        return GlimpseTrainee(name, cfg, data, agent, epochs, quiet, run_dir)

    runner = Runner(
        run_dir,
        cfg,
        epochs,
        changeable=RESUMABLE,
        resume=resume,
        keep=keep,
        log=log,
        show_progress=not quiet,
        history_in_sentinel=True,
    )
    out = runner.train(setup)
    return {"model": name, "run_dir": str(run_dir), "epochs": max(out.start_epoch, epochs), "history": out.history}


def train(
    cfg: GlimpseConfig,
    model_dir: str | Path,
    resume: bool = False,
    keep: int | None = 3,
    quiet: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train every model of ``cfg.models`` in ``model_dir/<model>/``; returns the summaries."""
    model_dir = Path(model_dir)
    data = task_data(cfg, log)
    warning = glimpse_size_warning(cfg.glimpse_size, data.image_shape()[0])
    if warning and {"ram", "random"} & set(cfg.model_list()):
        log(warning)
    log(speed_line(cfg))
    t0 = time.time()
    out = {}
    for name in cfg.model_list():
        t = time.time()
        out[name] = train_model(name, cfg, data, model_dir / name, resume, keep, quiet, log)
        out[name]["seconds"] = round(time.time() - t, 1)
    log(
        f"trained {', '.join(cfg.model_list())} ({cfg.task}, {cfg.dataset}) in {time.time() - t0:.0f} s; "
        f"checkpoints in {model_dir}"
    )
    return out
