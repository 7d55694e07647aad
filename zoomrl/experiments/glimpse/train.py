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

import keras
import numpy as np

from zoomrl.agents.base import BatchAgent, LabelledBatch
from zoomrl.agents.ram.agent import RamAgent, WholeImageAgent
from zoomrl.agents.seeding import seed_everything
from zoomrl.core.checkpoint import read_latest, read_state
from zoomrl.core.config import ConfigError
from zoomrl.core.io import atomic_path
from zoomrl.core.runner import CONFIG_FILE, STATE_FILE, BarFactory, EpochResult, Progress, Runner
from zoomrl.eval.glimpse_plots import plot_training_history
from zoomrl.experiments.glimpse.config import GlimpseConfig
from zoomrl.experiments.glimpse.data import GlimpseData, epoch_seed

# Settings that may change between a run and its resumption (they do not change what was trained so far).
RESUMABLE = {"epochs", "baseline_epochs", "models", "mc_samples", "draw_max", "test_size", "preset"}


def jit_for(kind: str, xla: bool = True) -> bool | str:
    """XLA on TensorFlow for dense networks (about 2x faster steps on a CPU, seconds of compiling first), never
    for convolutions (much slower there); other backends keep Keras's choice."""
    if keras.backend.backend() != "tensorflow":
        return "auto"
    return bool(xla) and kind in ("fc", "mlp")


def speed_line(cfg: GlimpseConfig) -> str:
    """The compiled path in force, in one line. Measured with scripts/bench_glimpse_backends.py (docs/glimpse.md,
    "Speed"): TensorFlow is the faster backend here (JAX's jit took 1.7x the CPU time of XLA for the fc RAM and 3.4x
    that of a plain graph for the conv one), so it stays the default."""
    backend = keras.backend.backend()
    if cfg.eager:
        return f"speed: {backend}, eager (no compiled graph: slow, for tests)"
    if backend != "tensorflow":
        return f"speed: {backend} (KERAS_BACKEND); TensorFlow measured faster for these networks"
    kind = "XLA (jit_compile)" if jit_for(cfg.glimpse_net, cfg.xla) else "a tf.function graph, no XLA"
    return f"speed: TensorFlow, RAM's {cfg.glimpse_net} glimpse network compiled as {kind} (the faster path measured)"


def build_agent(
    name: str, cfg: GlimpseConfig, image_shape: tuple[int, ...], n_outputs: int
) -> RamAgent | WholeImageAgent:
    if name in ("ram", "random"):
        return RamAgent(
            image_shape,
            optimizer=cfg.optimizer,
            learning_rate=cfg.learning_rate,
            momentum=cfg.momentum,
            jit_compile=jit_for(cfg.glimpse_net, cfg.xla),
            run_eagerly=cfg.eager,
            seed=cfg.seed,
            task=cfg.task,
            n_outputs=n_outputs,
            glimpses=cfg.glimpses,
            glimpse_size=cfg.glimpse_size,
            scales=cfg.scales,
            glimpse_net=cfg.glimpse_net,
            core=cfg.core,
            glimpse_hidden=cfg.glimpse_hidden,
            loc_hidden=cfg.loc_hidden,
            glimpse_units=cfg.glimpse_units,
            core_units=cfg.core_units,
            loc_std=cfg.loc_std,
            random_locations=name == "random",
            reward=cfg.reward,
            reward_sigma=cfg.reward_sigma,
            reward_radius=cfg.reward_radius,
            reg_loss=cfg.reg_loss,
            supervised_weight=cfg.supervised_weight,
            reinforce_weight=cfg.reinforce_weight,
            first_location=cfg.first_location,
            logp_unclipped=cfg.logp_unclipped,
        )
    return WholeImageAgent(
        image_shape,
        kind=name,
        task=cfg.task,
        n_outputs=n_outputs,
        reg_loss=cfg.reg_loss,
        hidden=cfg.baseline_hidden,
        optimizer=cfg.optimizer,
        learning_rate=cfg.learning_rate,
        momentum=cfg.momentum,
        jit_compile=jit_for(name, cfg.xla),
        run_eagerly=cfg.eager,
        seed=cfg.seed,
    )


def epochs_of(name: str, cfg: GlimpseConfig) -> int:
    return cfg.epochs if name in ("ram", "random") else cfg.baseline_epochs


def check_resumable(saved: GlimpseConfig, cfg: GlimpseConfig, run_dir: Path) -> None:
    a, b = saved.to_dict(), cfg.to_dict()
    diff = sorted(k for k in a if k not in RESUMABLE and a[k] != b.get(k))
    if diff:
        k = diff[0]
        raise ConfigError(
            f"{run_dir}: cannot resume with a different {k} ({a[k]!r} saved, {b[k]!r} now; "
            f"{len(diff)} setting(s) differ); train afresh without --resume or use another --model-dir"
        )


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
        data: GlimpseData,
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
    data: GlimpseData,
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
        if resume and (run_dir / CONFIG_FILE).is_file():
            # Before the agent is built, with glimpse's own message; the driver checks the same allow-list again.
            check_resumable(GlimpseConfig.load(run_dir / CONFIG_FILE), cfg, run_dir)
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
    data = GlimpseData(cfg)
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
