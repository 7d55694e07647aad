"""Checkpoints of a DQN training run, on :class:`zoomrl.core.checkpoint.Checkpointer`.

Files in the run folder (``<model dir>/<class>/``):

* ``epoch_<k>.weights.h5``: the Q-network alone after epoch ``k`` (what testing loads); its HDF5 root attributes
  name what it was trained for (``zoomrl_meta``: family, variant, class, state size, actions, scale, steps), so a
  file never passes for another run's. The last ``keep`` epochs are kept, plus ``best.weights.h5``.
* ``training_state.npz``: everything else an exact resume needs, written once per epoch: optimizer slots, target
  network, replay memories (each distinct state row once), counters, random states, and the history.
* ``config.json``: the run's configuration, written with the first finished epoch (never before).
* ``latest.json``: the completion sentinel, written last (``{"epoch", "weights", "files", ...}``).

A fresh run in a folder that holds an earlier run first moves that run into ``previous_run/``
(:func:`zoomrl.core.checkpoint.stash_previous_run`); it is deleted once the new run's first epoch is saved and moved
back if the new run stops before, so an interrupted new run never costs the old one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoomrl.agents.dqn.agent import DQNAgent
from zoomrl.core.checkpoint import (  # noqa: F401 - re-exported for the families
    LATEST,
    PREVIOUS,
    Checkpointer,
    epoch_file,
    read_latest,
    read_state,
    stash_previous_run,
)
from zoomrl.core.config import ConfigBase, ConfigError
from zoomrl.core.io import FileDamagedError, ensure_free_space, read_json

STATE_FILE = "training_state.npz"
WEIGHTS = "weights.h5"
META_ATTR = "zoomrl_meta"


class CheckpointError(ValueError):
    """A checkpoint that does not fit this run, or cannot be read; the message says which file and why."""


def write_weights(agent: DQNAgent, path: Path, meta: Mapping[str, Any]) -> None:
    """The Q-network's weights, with ``meta`` in the file's root attributes."""
    import h5py

    # HDF5 can crash outright on a full disk: check the room first (one line naming the file if short).
    ensure_free_space(path, sum(int(np.asarray(w).nbytes) for w in agent.network.get_weights()))
    agent.save_weights(path)
    with h5py.File(path, "a") as f:
        f.attrs[META_ATTR] = json.dumps(dict(meta))


def read_weights_meta(path: Path) -> dict[str, Any] | None:
    """The ``meta`` :func:`write_weights` stored, None for a file without it; a damaged file names itself."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get(META_ATTR)
    except OSError as exc:
        raise CheckpointError(f"{path}: damaged or truncated weights file ({str(exc).splitlines()[0][:120]})") from None
    return None if raw is None else json.loads(raw)


def save_epoch(checkpointer: Checkpointer, epoch: int, agent: DQNAgent, config: ConfigBase,
               history: Sequence[Mapping[str, Any]], meta: Mapping[str, Any], score: float | None) -> Path:
    """Write epoch ``epoch`` (weights, state, config, sentinel, best, pruning); returns the weights path."""
    state = agent.get_state()
    state.update({"epoch": np.array(epoch), "meta": np.array(json.dumps(dict(meta))),
                  "history": np.array(json.dumps(list(history)))})

    def write_state(p: Path) -> None:
        ensure_free_space(p, sum(int(np.asarray(v).nbytes) for v in state.values()))
        with open(p, "wb") as f:
            np.savez(f, **state)

    sentinel = checkpointer.save(
        epoch,
        {WEIGHTS: lambda p: write_weights(agent, p, meta)},
        {STATE_FILE: write_state, "config.json": lambda p: p.write_text(json.dumps(config.to_dict(), indent=2))},
        info={"weights": epoch_file(epoch, WEIGHTS)},
        score=score,
    )
    return checkpointer.run_dir / sentinel["files"][WEIGHTS]


def check_meta(found: Mapping[str, Any], expected: Mapping[str, Any], where: Path,
               keys: Sequence[str] = ("family", "variant", "class_object", "state_size", "num_actions",
                                      "scale_subregion", "iou_head")) -> None:
    """Raise :class:`CheckpointError` naming the first of ``keys`` on which ``found`` and ``expected`` differ."""
    for key in keys:
        if key in found and key in expected and str(found[key]) != str(expected[key]):
            raise CheckpointError(f"{where}: checkpoint is for {key}={found[key]}, this run has {key}={expected[key]}")


def check_resume_config(saved: Mapping[str, Any], config: ConfigBase, fields: Sequence[str], where: Path) -> None:
    """A resumed run must keep the hyperparameters it was started with (only ``epochs`` may change)."""
    now = config.to_dict()
    diffs = [f"{k}={now[k]!r} (run has {saved[k]!r})" for k in fields if k in saved and saved[k] != now.get(k)]
    if diffs:
        raise ConfigError(f"--resume: {', '.join(diffs)} differ from {where}; a resumed run keeps its "
                          f"hyperparameters (drop those flags, or start a new run in another --model-dir)")


def load_state(run_dir: Path, agent: DQNAgent, config: ConfigBase, meta: Mapping[str, Any],
               fields: Sequence[str]) -> tuple[int, list[dict[str, Any]]]:
    """Restore weights and state from ``run_dir``; returns ``(last finished epoch, history)``; ``(0, [])`` when
    nothing finished there. Every damaged or foreign file raises a one-line :class:`CheckpointError`."""
    run_dir = Path(run_dir)
    try:
        latest = read_latest(run_dir)
    except FileDamagedError as exc:
        raise CheckpointError(str(exc)) from None
    if latest is None:
        return 0, []
    cfg_path = run_dir / "config.json"
    try:
        saved = read_json(cfg_path, what="configuration")
    except (FileNotFoundError, FileDamagedError) as exc:
        raise CheckpointError(str(exc)) from None
    check_resume_config(saved, config, fields, cfg_path)
    path = run_dir / STATE_FILE
    try:
        data = read_state(path)  # the core reader: every kind of damage is one line naming the file
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing; {run_dir / LATEST} says epoch {latest['epoch']} finished") from None
    except FileDamagedError as exc:
        raise CheckpointError(str(exc)) from None
    if "epoch" not in data or "meta" not in data:
        raise CheckpointError(f"{path}: not a zoomrl training state (no epoch or meta)")
    if int(data["epoch"]) != int(latest["epoch"]):
        raise CheckpointError(f"{path}: holds epoch {int(data['epoch'])}, {run_dir / LATEST} says {latest['epoch']}")
    check_meta(json.loads(str(data["meta"])), meta, path)
    weights = run_dir / str(latest.get("weights", epoch_file(int(latest["epoch"]), WEIGHTS)))
    load_weights_checked(weights, agent, meta)
    try:
        agent.set_state(data)
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: does not fit this agent ({exc})") from None
    return int(data["epoch"]), json.loads(str(data["history"]))


def load_weights_checked(path: Path, agent: DQNAgent, meta: Mapping[str, Any]) -> dict[str, Any] | None:
    """Load Q-network weights, refusing a file made for another family, model, class, hierarchy or size;
    returns the file's own meta (None for a file without it, which is then checked by its shapes only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint; train first or pass --checkpoint PATH")
    found = read_weights_meta(path)
    if found is not None:
        check_meta(found, meta, path)
    try:
        agent.load_weights(path)
    except Exception as exc:  # noqa: BLE001 - Keras raises several types for a mismatched or damaged file
        raise CheckpointError(
            f"{path}: does not fit a Q-network with state size {agent.state_size}, {agent.num_actions} actions and "
            f"{agent.config.hidden_units} hidden units "
            f"({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__})"
        ) from None
    return found


def latest_weights(run_dir: Path, which: str = "latest") -> Path | None:
    """The weights of the last complete epoch (or ``which="best"``: of the best one) in ``run_dir``, or None."""
    run_dir = Path(run_dir)
    if which == "best":
        return run_dir / f"best.{WEIGHTS}" if (run_dir / f"best.{WEIGHTS}").is_file() else None
    try:
        latest = read_latest(run_dir)
    except FileDamagedError as exc:
        raise CheckpointError(str(exc)) from None
    if latest is None:
        return None
    return run_dir / str(latest.get("weights", epoch_file(int(latest["epoch"]), WEIGHTS)))
