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
from zoomrl.core.io import FileDamagedError, ensure_free_space
from zoomrl.core.runner import (  # noqa: F401 - re-exported: the run driver reads and writes these files
    STATE_FILE,
    WEIGHTS,
    CheckpointError,
    check_resume_config,
)
from zoomrl.core.runner import check_meta as _check_meta

META_ATTR = "zoomrl_meta"
META_KEYS = ("family", "variant", "class_object", "state_size", "num_actions", "scale_subregion", "iou_head")
"""What a checkpoint's meta must share with the run that loads it."""


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


def check_meta(
    found: Mapping[str, Any], expected: Mapping[str, Any], where: Path, keys: Sequence[str] = META_KEYS
) -> None:
    """Raise :class:`CheckpointError` naming the first of ``keys`` on which ``found`` and ``expected`` differ."""
    _check_meta(found, expected, where, keys)


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
