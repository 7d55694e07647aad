"""``python -m zoomrl patchdrop train``: the four stages, each in its own run folder under the model folder.

``<model-dir>/config.json`` (the last run's configuration) and one folder per stage (:data:`STAGE_DIRS`), each
with the common layout: ``config.json``, ``epoch_<k>.weights.h5`` (all networks; stage 2 one file per penalty,
``epoch_<k>.sigma<s>.weights.h5``), ``training_state.npz`` (optimizers, the NumPy generators: an exact resume),
``latest.json`` (its ``finished`` tells whether the stage ran all its epochs). With no ``--stage``, every stage
runs in order and the finished ones are skipped; a stage trained afresh removes the checkpoints of the stages after
it (they were built on the old one).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from zoomrl.core.checkpoint import LATEST, Checkpointer, RunLock, read_latest, stash_previous_run
from zoomrl.core.config import ConfigError

STAGES = ("classifiers", "pretrain", "finetune", "two_stream")
STAGE_DIRS = {
    "classifiers": "stage1_classifiers",
    "pretrain": "stage2_pretrain",
    "finetune": "stage3_finetune",
    "two_stream": "stage4_two_stream",
}
STATE_FILE = "training_state.npz"
# Fields that may change between a run and its --resume (epoch counts, test-time settings).
RESUMABLE = {
    "preset",
    "classifier_epochs",
    "pretrain_epochs",
    "finetune_epochs",
    "two_stream_epochs",
    "eval_batch",
    "random_draws",
    "max_pictures",
}


def stage_number(stage: str) -> int:
    return STAGES.index(stage) + 1


def stage_dir(model_dir: str | Path, stage: str) -> Path:
    return Path(model_dir) / STAGE_DIRS[stage]


def sigma_tag(sigma: float) -> str:
    return f"sigma{float(sigma):g}"


def stage_finished(model_dir: str | Path, stage: str) -> dict[str, Any] | None:
    """The stage's sentinel when it ran all its epochs, else None."""
    latest = read_latest(stage_dir(model_dir, stage))
    return latest if latest is not None and latest.get("finished") else None


def weights_file(model_dir: str | Path, stage: str, sigma: float | None = None) -> Path:
    """The last epoch's weights of a finished ``stage`` (stage 2: of penalty ``sigma``); one-line error if none."""
    latest = stage_finished(model_dir, stage)
    if latest is None:
        raise FileNotFoundError(
            f"{stage_dir(model_dir, stage)}: stage {stage_number(stage)} ({stage}) has not "
            f"finished; run `python -m zoomrl patchdrop train --stage {stage_number(stage)}` "
            f"with this --model-dir first"
        )
    what = "weights.h5" if sigma is None else f"{sigma_tag(sigma)}.weights.h5"
    name = latest["files"].get(what)
    if name is None:
        raise FileNotFoundError(
            f"{stage_dir(model_dir, stage)}: no weights for {what} (penalties trained: "
            f"{', '.join(latest.get('sigmas', [])) or 'none'})"
        )
    return stage_dir(model_dir, stage) / name


def load_data(cfg: Any, split: str) -> tuple[np.ndarray, np.ndarray]:
    from zoomrl.data.patch_digits import load_split

    limit = (cfg.train_limit if split == "train" else cfg.test_limit) or None
    if cfg.dataset == "digits":
        per = cfg.train_per_digit if split == "train" else cfg.test_per_digit
        return load_split(
            "digits",
            split,
            limit=limit,
            per_digit=per,
            canvas_size=cfg.canvas_size,
            digit_size=cfg.digit_size,
            clutter=cfg.clutter,
            seed=cfg.data_seed,
        )
    return load_split(cfg.dataset, split, limit=limit)


def augment(images: np.ndarray, rng: np.random.Generator, flip: bool) -> np.ndarray:
    """CIFAR augmentation: a random shift of up to 4 pixels (zero padding) and, if ``flip``, a mirror half the time."""
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)))
    dy, dx = rng.integers(0, 9, size=(2, n))
    out = np.stack([padded[i, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    if flip:
        mirror = rng.random(n) < 0.5
        out[mirror] = out[mirror, :, ::-1]
    return out


def _check_resumable(cfg: Any, run_dir: Path) -> None:
    from zoomrl.experiments.patchdrop.config import PatchDropConfig

    saved = PatchDropConfig.load(run_dir / "config.json").to_dict()
    now = cfg.to_dict()
    differ = sorted(k for k in now if k not in RESUMABLE and now[k] != saved.get(k))
    if differ:
        raise ConfigError(
            f"{run_dir}: --resume with settings that differ from the saved run: "
            + ", ".join(f"{k} ({saved.get(k)!r} saved, {now[k]!r} now)" for k in differ)
        )


def _save_state(path: Path, agents: list) -> None:
    state: dict[str, np.ndarray] = {"agents": np.array(len(agents))}
    for i, agent in enumerate(agents):
        state.update({f"a{i}/{k}": v for k, v in agent.get_state().items()})
    with open(path, "wb") as f:
        np.savez(f, **state)


def _load_state(path: Path, agents: list) -> None:
    from zoomrl.core.checkpoint import read_state
    from zoomrl.core.io import FileDamagedError

    # The core reader names the file for every kind of damage (a truncated zip raised BadZipFile here).
    state = read_state(path)
    if int(state.get("agents", -1)) != len(agents):
        raise FileDamagedError(f"{path}: holds {state.get('agents')} agents' states, this stage has {len(agents)}")
    for i, agent in enumerate(agents):
        prefix = f"a{i}/"
        agent.set_state({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})


def _clear_run(run_dir: Path) -> None:
    Checkpointer(run_dir).clear()
    for name in (LATEST, STATE_FILE):
        (run_dir / name).unlink(missing_ok=True)


def build_agents(cfg: Any, stage: str, model_dir: Path, image_shape: tuple, num_classes: int) -> list:
    """The stage's agents with their inputs loaded from the stage before (stage 2: one agent per penalty, sharing
    the classifiers)."""
    from zoomrl.agents.patchdrop.agent import PatchDropAgent

    k = stage_number(stage)

    def agent(sigma: float, j: int, classifiers=None) -> PatchDropAgent:
        return PatchDropAgent(
            image_shape,
            num_classes,
            cfg,
            seed=np.random.SeedSequence([cfg.seed, k, j]),
            classifiers=classifiers,
            sigma=sigma,
        )

    if stage == "classifiers":
        agents = [agent(cfg.pretrain_sigma, 0)]
        agents[0].configure(stage)
    elif stage == "pretrain":
        first = agent(cfg.sigma_curve[0], 0)
        first.load_weights(weights_file(model_dir, "classifiers"), only=("hr", "lr"))
        agents = [first] + [agent(s, j, (first.hr, first.lr)) for j, s in enumerate(cfg.sigma_curve[1:], 1)]
        for a in agents:
            a.configure(stage)
    elif stage == "finetune":
        agents = [agent(cfg.finetune_sigma, 0)]
        agents[0].load_weights(weights_file(model_dir, "pretrain", cfg.pretrain_sigma))
        agents[0].configure(stage, sigma=cfg.finetune_sigma)
    else:
        agents = [agent(cfg.two_stream_sigma, 0)]
        agents[0].load_weights(weights_file(model_dir, "finetune"))
        agents[0].configure(stage, sigma=cfg.two_stream_sigma)
    return agents


def _epoch(
    agent: Any, stage: str, images: np.ndarray, labels: np.ndarray, batch: int, flip: bool, bar: Callable
) -> dict[str, float]:
    order = agent.rng.permutation(len(images))
    sums: dict[str, float] = {}
    steps = 0
    # whole batches only (a last, smaller one would trace the update a second time); a new order every epoch
    stop = len(order) - len(order) % batch if len(order) >= batch else len(order)
    for start in bar(range(0, stop, batch)):
        idx = order[start : start + batch]
        x, y = images[idx], labels[idx]
        if stage == "classifiers":
            if flip is not None:
                x = augment(x, agent.rng, flip)
            out = agent.learn_classifiers(x, y)
        else:
            out = agent.learn(x, y)
        for key, v in out.items():
            sums[key] = sums.get(key, 0.0) + v
        steps += 1
    return {key: v / max(steps, 1) for key, v in sums.items()}


def train_stage(
    cfg: Any,
    stage: str,
    model_dir: str | Path,
    data: tuple[np.ndarray, np.ndarray],
    resume: bool,
    keep: int | None,
    quiet: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train one stage in its run folder (continuing after its last finished epoch when ``resume``); returns its
    sentinel."""
    from tqdm import tqdm

    model_dir = Path(model_dir)
    run_dir = stage_dir(model_dir, stage)
    epochs = cfg.stage_epochs(stage)
    images, labels = data
    num_classes = {"digits": 10, "cifar10": 10, "cifar100": 100}[cfg.dataset]
    flip = (cfg.dataset != "digits") if (cfg.augment and cfg.dataset != "digits") else None
    batch = {
        "classifiers": cfg.classifier_batch,
        "pretrain": cfg.pretrain_batch,
        "finetune": cfg.finetune_batch,
        "two_stream": cfg.two_stream_batch,
    }[stage]
    k = stage_number(stage)
    with RunLock(run_dir):
        latest = read_latest(run_dir)
        start = 0
        if resume and latest is not None:
            _check_resumable(cfg, run_dir)
            start = int(latest["epoch"])
        # A stage's fresh weights depend on (seed, stage) alone, not on what this process built before: a stage
        # started by `--stage k`, within a run of every stage, or again after an interruption starts the same.
        from zoomrl.agents.seeding import seed_everything

        seed_everything(int(np.random.SeedSequence([cfg.seed, k]).generate_state(1)[0]))
        agents = build_agents(cfg, stage, model_dir, images.shape[1:], num_classes)
        if stage != "classifiers":  # the alpha schedule spans the stage's updates (whole batches, see _epoch)
            for a in agents:
                a.schedule(epochs * (len(images) // batch if len(images) >= batch else 1))
        if start:
            for a, path in zip(agents, _weight_names(cfg, stage)):
                a.load_weights(run_dir / latest["files"][path])
            _load_state(run_dir / STATE_FILE, agents)
        elif stash_previous_run(run_dir, log) is None:  # a finished stage waits in previous_run/ (core checkpoint)
            _clear_run(run_dir)
        if not start:
            for later in STAGES[k:]:  # built on the old version of this stage
                if (stage_dir(model_dir, later) / LATEST).exists():
                    _clear_run(stage_dir(model_dir, later))
                    log(f"stage {stage_number(later)} ({later}): checkpoints removed (stage {k} is retrained)")
        cfg.save(run_dir / "config.json")
        seconds = float(latest.get("seconds", 0.0)) if start and latest else 0.0
        if start >= epochs:
            log(f"stage {k} ({stage}): already at epoch {start} of {epochs}, nothing to do")
        summary: dict[str, float] = {}
        ckpt = Checkpointer(run_dir, keep=keep)
        info: dict[str, Any] = dict(latest or {}) if start else {}
        for epoch in range(start + 1, epochs + 1):
            t0 = time.perf_counter()
            results = []
            for a in agents:
                label = f"stage {k} epoch {epoch}/{epochs}" + (f" sigma {a.sigma:g}" if stage == "pretrain" else "")

                def bar(it: Any, label: str = label) -> Any:
                    return tqdm(it, desc=label, leave=False, disable=quiet, unit="batch")

                results.append(_epoch(a, stage, images, labels, batch, flip, bar))
            seconds += time.perf_counter() - t0
            summary = {
                f"{key}" if len(agents) == 1 else f"{sigma_tag(a.sigma)}_{key}": round(v, 4)
                for a, r in zip(agents, results)
                for key, v in r.items()
            }
            writers = {what: (lambda p, a=a: a.save_weights(p)) for what, a in zip(_weight_names(cfg, stage), agents)}
            info = {
                "stage": stage,
                "epochs": epochs,
                "finished": epoch >= epochs,
                "seconds": round(seconds, 1),
                "sigmas": [sigma_tag(a.sigma) for a in agents] if stage == "pretrain" else [],
                "train_images": int(len(images)),
                "last_epoch": summary,
            }
            ckpt.save(epoch, writers, {STATE_FILE: lambda p: _save_state(p, agents)}, info=info)
            log(f"stage {k} ({stage}) epoch {epoch}/{epochs}: " + ", ".join(f"{a} {b:g}" for a, b in summary.items()))
        log(f"stage {k} ({stage}) finished: {epochs} epochs on {len(images)} images in {seconds:.0f} s of training")
        return read_latest(run_dir) or info


def _weight_names(cfg: Any, stage: str) -> list[str]:
    if stage == "pretrain":
        return [f"{sigma_tag(s)}.weights.h5" for s in cfg.sigma_curve]
    return ["weights.h5"]


def run_train(
    cfg: Any,
    model_dir: str | Path,
    stage: str | None,
    resume: bool,
    keep: int | None,
    quiet: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train ``stage`` (or every stage in order, skipping finished ones); returns ``{stage: sentinel}``."""
    from zoomrl.agents.patchdrop.agent import describe_execution
    from zoomrl.agents.seeding import seed_everything

    model_dir = Path(model_dir)
    seed_everything(cfg.seed)
    log(describe_execution(cfg))
    with RunLock(model_dir):
        cfg.save(model_dir / "config.json")
        todo = [stage] if stage else [s for s in STAGES if cfg.stage_epochs(s) > 0]
        data = None
        done: dict[str, Any] = {}
        for s in todo:
            fin = stage_finished(model_dir, s) if stage is None else None
            if fin is not None and int(fin["epoch"]) >= cfg.stage_epochs(s):
                log(f"stage {stage_number(s)} ({s}): already finished, skipped")
                done[s] = fin
                continue
            if cfg.stage_epochs(s) == 0:
                raise ConfigError(f"stage {stage_number(s)} ({s}) has 0 epochs in this configuration")
            if data is None:
                data = load_data(cfg, "train")
                log(f"data: {cfg.dataset}, {len(data[0])} training images of {data[0].shape[1:]}")
            # a stage started after the previous one finished resumes only when asked
            partial = stage is None and _partial(model_dir, s, cfg.stage_epochs(s))
            done[s] = train_stage(cfg, s, model_dir, data, resume=resume or partial, keep=keep, quiet=quiet, log=log)
        return done


def _partial(model_dir: Path, stage: str, cfg_epochs: int) -> bool:
    """A stage interrupted part way, or given more epochs (no --stage): continue it rather than start over."""
    latest = read_latest(stage_dir(model_dir, stage))
    return latest is not None and (not latest.get("finished") or int(latest["epoch"]) < cfg_epochs)


__all__ = ["STAGES", "STAGE_DIRS", "run_train", "train_stage", "stage_finished", "weights_file", "load_data"]
