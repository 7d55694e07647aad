"""``python -m zoomrl glimpse train``: train every model of ``config.models``, each in ``<model-dir>/<model>/``.

A model's run folder holds ``config.json``, ``epoch_<k>.weights.h5`` (networks only), ``training_state.npz``
(optimizer slots and the random generator's state), ``latest.json`` (the completion sentinel, with the per-epoch
history) and ``training_curves.png``; a :class:`zoomrl.core.checkpoint.RunLock` is held while it trains.
Each epoch's data and the model's random generator are seeded from ``(seed, epoch)``, so ``--resume`` after
``N - 1`` epochs and one more epoch gives the same weights as ``N`` epochs straight.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
from tqdm import tqdm

from zoomrl.agents.ram.agent import RamAgent, WholeImageAgent
from zoomrl.agents.seeding import seed_everything
from zoomrl.core.checkpoint import Checkpointer, RunLock, read_latest, read_state, stash_previous_run
from zoomrl.core.config import ConfigError
from zoomrl.eval.glimpse_plots import plot_training_history
from zoomrl.experiments.glimpse.config import GlimpseConfig
from zoomrl.experiments.glimpse.data import GlimpseData, epoch_seed

STATE_FILE = "training_state.npz"
WEIGHTS = "weights.h5"
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


def build_agent(name: str, cfg: GlimpseConfig, image_shape: tuple[int, ...], n_outputs: int):
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


def load_run(run_dir: Path, agent: Any) -> tuple[int, list[dict[str, Any]]]:
    """Restore the last finished epoch of ``run_dir`` into ``agent``; returns ``(epoch, history)``."""
    latest = read_latest(run_dir)
    if latest is None:
        return 0, []
    weights = run_dir / latest["files"][WEIGHTS]
    agent.load_weights(weights)
    # The core reader names the file for every kind of damage (a truncated zip raised BadZipFile here).
    state = read_state(run_dir / STATE_FILE)
    agent.set_state(state)
    return int(latest["epoch"]), list(latest.get("history", []))


def fresh_start(run_dir: Path, log: Callable[[str], None] = print) -> None:
    """A new run in ``run_dir``: an earlier finished run is moved into ``previous_run/``, deleted once this run's
    first epoch is saved and moved back if it stops before (:func:`zoomrl.core.checkpoint.stash_previous_run`);
    it used to be deleted at once, before anything new was trained."""
    if stash_previous_run(run_dir, log) is None:
        Checkpointer(run_dir).clear()  # epoch files without a sentinel: a first epoch cut short, never finished


def plot_history(history: list[dict[str, Any]], path: Path) -> None:
    plot_training_history(history, path)


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
    """Train one model (``ram``, ``random``, ``cnn`` or ``mlp``) in ``run_dir``; returns its summary."""

    seed_everything(cfg.seed)
    epochs = epochs_of(name, cfg)
    with RunLock(run_dir):
        resuming = resume and (run_dir / "config.json").is_file()
        if resuming:
            check_resumable(GlimpseConfig.load(run_dir / "config.json"), cfg, run_dir)
        agent = build_agent(name, cfg, data.image_shape(), data.n_outputs)
        start, history = 0, []
        if resuming:
            start, history = load_run(run_dir, agent)
            log(f"{name}: resume after epoch {start}" if start else f"{name}: nothing to resume, starting afresh")
        if start >= epochs:
            log(f"{name}: {start} epochs already trained (asked for {epochs}); nothing to do")
            return {"model": name, "run_dir": str(run_dir), "epochs": start, "history": history}
        if not start:
            fresh_start(run_dir, log)
        cfg.save(run_dir / "config.json")
        checkpointer = Checkpointer(run_dir, keep=keep, metric="train_score")
        for epoch in range(start, epochs):
            t0 = time.time()
            split = data.train_epoch(epoch)
            agent.reseed(epoch_seed(cfg.seed, epoch))
            agent.reset_metrics()
            bs = min(cfg.batch_size, len(split))
            n_batches = len(split) // bs  # equal batches (XLA compiles one shape); the rest waits for next epoch
            sums: dict[str, float] = {}
            with tqdm(
                total=n_batches, desc=f"{name} epoch {epoch + 1}/{epochs}", unit="batch", disable=quiet, leave=False
            ) as bar:
                for b in range(n_batches):
                    logs = agent.learn(split.images[b * bs : (b + 1) * bs], split.targets[b * bs : (b + 1) * bs])
                    if not np.isfinite(logs.get("loss", 0.0)):
                        raise ValueError(
                            f"{name} epoch {epoch + 1}: the loss is not finite; nothing of this epoch "
                            f"was saved (lower --learning-rate?)"
                        )
                    for k, v in logs.items():
                        sums[k] = sums.get(k, 0.0) + v / n_batches
                    bar.update(1)
            stats = {
                "epoch": epoch + 1,
                "seconds": round(time.time() - t0, 2),
                **{k: round(float(v), 5) for k, v in sums.items()},
            }
            history.append(stats)
            if not quiet or epoch + 1 == epochs:
                parts = " ".join(f"{k} {v:.4f}" for k, v in stats.items() if k not in ("epoch", "seconds"))
                log(f"{name} epoch {epoch + 1}/{epochs}: {parts} ({stats['seconds']:.1f} s)")

            def write_state(path: Path) -> None:
                with open(path, "wb") as fh:
                    np.savez(fh, **agent.get_state())

            checkpointer.save(
                epoch + 1,
                {WEIGHTS: agent.save_weights},
                {STATE_FILE: write_state},
                info={"model": name, "history": history},
            )
        plot_history(history, run_dir / "training_curves.png")
    return {"model": name, "run_dir": str(run_dir), "epochs": epochs, "history": history}


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
