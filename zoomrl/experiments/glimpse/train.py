"""``python -m zoomrl glimpse train``: train every model of ``config.models``, each in ``<model-dir>/<model>/``.

Each model is a :class:`GlimpseTrainee` driven by the core run driver (:class:`zoomrl.core.runner.Runner`), which
owns the run folder: its lock, ``--resume`` against the allow-list :data:`RESUMABLE`, the stash of an earlier run,
``config.json``, ``epoch_<k>.weights.h5`` (networks only), ``training_state.npz`` (optimizer slots, the random
generator's state, the epoch and the history), ``latest.json`` (the completion sentinel, with the per-epoch
history, as documented before the move), TensorBoard scalars in ``tensorboard/``; ``training_curves.png`` is this
family's.
Each epoch's data and the model's random generator are seeded from ``(seed, epoch)``, so ``--resume`` after
``N - 1`` epochs and one more epoch gives the same weights as ``N`` epochs straight.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoomrl.agents.base import BatchAgent, LabelledBatch
from zoomrl.agents.ram.agent import build_agent as ram_agent
from zoomrl.agents.ram.agent import speed_line
from zoomrl.agents.seeding import seed_everything
from zoomrl.core.checkpoint import read_latest, read_state
from zoomrl.core.io import atomic_path
from zoomrl.core.runner import STATE_FILE, BarFactory, EpochResult, Progress, Runner
from zoomrl.data.splits import TaskData, epoch_seed
from zoomrl.eval.glimpse_plots import plot_training_history
from zoomrl.experiments.glimpse.config import GlimpseConfig

# Settings that may change between a run and its resumption (they do not change what was trained so far).
RESUMABLE = {"epochs", "baseline_epochs", "models", "mc_samples", "draw_max", "test_size", "preset"}


def build_agent(name: str, cfg: GlimpseConfig, image_shape: tuple[int, ...], n_outputs: int) -> BatchAgent:
    """The agent of model ``name`` for this run's task and seed."""
    return ram_agent(name, cfg, image_shape, n_outputs, task=cfg.task, seed=cfg.seed)


def epochs_of(name: str, cfg: GlimpseConfig) -> int:
    return cfg.epochs if name in ("ram", "random") else cfg.baseline_epochs


def upgrade_old_state(run_dir: Path, meta: Mapping[str, Any]) -> bool:
    """Let the run driver resume a run saved before glimpse moved onto it: such a run kept its history in
    ``latest.json`` only and its ``training_state.npz`` held the agent's arrays alone, which the driver refuses
    (no ``epoch`` or ``meta``). Add the three entries the driver reads, from ``latest.json``, written to a
    temporary name and renamed. Returns whether the state was upgraded; a damaged state is a one-line error."""
    latest = read_latest(run_dir)
    path = run_dir / STATE_FILE
    if latest is None or not path.is_file():
        return False  # nothing to resume, or the driver names the missing file
    state = read_state(path)
    if "meta" in state:
        return False
    state.update(
        epoch=np.array(int(latest["epoch"])),
        meta=np.array(json.dumps(dict(meta))),
        history=np.array(json.dumps(list(latest.get("history", [])))),
    )
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **state)
    return True


class GlimpseTrainee:
    """One model of the family (``ram``, ``random``, ``cnn`` or ``mlp``) for the run driver: each epoch is one pass
    of equal batches over that epoch's canvases. No score is given, so no ``best`` checkpoint, as before."""

    metric = "train_score"

    def __init__(
        self,
        name: str,
        cfg: GlimpseConfig,
        data: TaskData,
        agent: BatchAgent,
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

    def init_fresh(self, bar: BarFactory) -> None:
        pass

    def run_epoch(self, epoch: int, progress: Progress) -> EpochResult:
        agent, cfg, name = self.agent, self.cfg, self.name
        t0 = time.time()
        split = self.data.train_epoch(epoch)
        agent.begin_epoch(epoch_seed(cfg.seed, epoch))
        bs = min(cfg.batch_size, len(split))
        n_batches = len(split) // bs  # equal batches (XLA compiles one shape); the rest waits for next epoch
        sums: dict[str, float] = {}
        for b in range(n_batches):
            logs = agent.learn(LabelledBatch(split.images[b * bs : (b + 1) * bs], split.targets[b * bs : (b + 1) * bs]))
            if not np.isfinite(logs.get("loss", 0.0)):
                raise FloatingPointError(f"the loss of {name} is not finite")
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v / n_batches
            progress(bs)
        stats = {
            "epoch": epoch + 1,
            "seconds": round(time.time() - t0, 2),
            **{k: round(float(v), 5) for k, v in sums.items()},
        }
        line = ""  # --quiet: the last epoch's line only
        if not self.quiet or epoch + 1 == self.epochs:
            parts = " ".join(f"{k} {v:.4f}" for k, v in stats.items() if k not in ("epoch", "seconds"))
            line = f"{name} epoch {epoch + 1}/{self.epochs}: {parts} ({stats['seconds']:.1f} s)"
        return EpochResult(stats, line)

    def state(self) -> dict[str, np.ndarray]:
        return self.agent.get_state()

    def restore(self, state: Mapping[str, np.ndarray]) -> None:
        self.agent.set_state(state)

    def save_weights(self, path: Path) -> None:
        self.agent.save_weights(path)

    def load_weights(self, path: Path) -> None:
        self.agent.load_weights(path)

    def before_save(self, history: Sequence[Mapping[str, Any]]) -> None:
        pass

    def after_save(self, history: Sequence[Mapping[str, Any]]) -> None:
        if history[-1]["epoch"] == self.epochs:  # the curves once, at the end (a plot costs about a second)
            plot_training_history(history, self.run_dir / "training_curves.png")

    def close(self) -> None:
        pass


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
        if resume:
            upgrade_old_state(run_dir, {"model": name})
        agent = build_agent(name, cfg, data.image_shape(), data.n_outputs)
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


def glimpse_size_warning(cfg: GlimpseConfig, canvas: int) -> str | None:
    """One line when the glimpse is not smaller than the canvas. A warning, not a refusal: a glimpse that sees the
    whole image is a legitimate upper-bound comparison, but almost always a mistaken flag, and where the model
    looks then hardly matters (a glimpse at the centre sees every pixel)."""
    if cfg.glimpse_size < canvas or not {"ram", "random"} & set(cfg.model_list()):
        return None
    return (
        f"warning: --glimpse-size {cfg.glimpse_size} is not smaller than the {canvas}-pixel canvas: a glimpse at "
        f"the centre sees the whole image, so where the model looks hardly matters (expected under {canvas})"
    )


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
    data = TaskData(cfg)
    warning = glimpse_size_warning(cfg, data.image_shape()[0])
    if warning:
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
