"""Checkpoints of a training run, written atomically (temporary file, then rename).

Files in ``<model dir>/<class>/``:

* ``config.json``: the :class:`~zoomrl.experiments.hierarchical.config.Config` of the run.
* ``epoch_<k>.weights.h5``: the Q-network after epoch ``k`` (1-based); the testing scripts load these.
* ``training_state.npz``: everything else a resume needs after the last finished epoch: epoch, epsilon,
  optimizer slots, replay memory, counters, random states, the variant / class / state size it belongs to,
  and the per-epoch history. Rewritten after every epoch; it names its weights file.
* ``latest.json``: ``{"epoch": k, "weights": "epoch_<k>.weights.h5"}``, the last complete checkpoint.

The weights file is written before the state that names it, and ``latest.json`` last, so a crash at any point
leaves the previous checkpoint whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from zoomrl.agents.dqn.agent import DQNAgent
from zoomrl.experiments.hierarchical.config import Config
from zoomrl.core.io import atomic_path, write_json


class CheckpointError(ValueError):
    """A checkpoint that does not fit this run; the message says what differs."""


def weights_name(epoch: int) -> str:
    return f"epoch_{epoch}.weights.h5"


def save_checkpoint(run_dir: Path, epoch: int, agent: DQNAgent, config: Config, history: list[dict[str, Any]]) -> Path:
    """Save the state after 1-based ``epoch``; returns the weights path."""
    run_dir = Path(run_dir)
    weights = run_dir / weights_name(epoch)
    agent.save_weights(weights)
    data = agent.state_dict()
    data.update(
        {
            "epoch": np.array(epoch),
            "variant": np.array(config.variant),
            "class_object": np.array(config.class_object),
            "state_size": np.array(agent.state_size),
            "weights_file": np.array(weights.name),
            "history": np.array(json.dumps(history)),
        }
    )
    with atomic_path(run_dir / "training_state.npz", suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **data)
    write_json(run_dir / "latest.json", {"epoch": epoch, "weights": weights.name})
    return weights


def check_compatible(found: dict[str, Any], config: Config, state_size: int, where: Path) -> None:
    """Raise :class:`CheckpointError` when a checkpoint was made for another variant, class or state size."""
    for key, expected in (("variant", config.variant), ("class_object", config.class_object),
                          ("state_size", state_size)):
        value = found.get(key)
        if value is not None and str(value) != str(expected):
            raise CheckpointError(
                f"{where}: checkpoint is for {key}={value}, this run has {key}={expected}"
            )


def load_training_state(run_dir: Path, agent: DQNAgent, config: Config) -> tuple[int, list[dict[str, Any]]]:
    """Restore weights and state from ``run_dir``; returns ``(last finished epoch, history)``.

    Returns ``(0, [])`` when there is nothing to resume.
    """
    path = Path(run_dir) / "training_state.npz"
    if not path.is_file():
        return 0, []
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable training state ({exc})") from None
    check_compatible({k: data[k].item() for k in ("variant", "class_object", "state_size")}, config,
                     agent.state_size, path)
    weights = Path(run_dir) / str(data["weights_file"])
    if not weights.is_file():
        raise CheckpointError(f"{path}: names {weights.name}, which is missing")
    agent.load_weights(weights)
    agent.load_state_dict(data)
    return int(data["epoch"]), json.loads(str(data["history"]))


def load_weights_checked(path: Path, agent: DQNAgent, config: Config) -> None:
    """Load Q-network weights for testing, checking the run's ``config.json`` when it sits beside them."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint; train first or pass --checkpoint PATH")
    cfg_path = path.parent / "config.json"
    if cfg_path.is_file():
        saved = json.loads(cfg_path.read_text())
        check_compatible({"variant": saved.get("variant"), "class_object": saved.get("class_object")}, config,
                         agent.state_size, path)
    try:
        agent.load_weights(path)
    except Exception as exc:  # noqa: BLE001 - Keras raises several types for a mismatched file
        raise CheckpointError(
            f"{path}: does not fit a Q-network with state size {agent.state_size} and "
            f"{config.hidden_units} hidden units ({str(exc).splitlines()[0][:160]})"
        ) from None


def latest_weights(run_dir: Path) -> Path | None:
    """The weights of the last complete epoch in ``run_dir``, or None."""
    latest = Path(run_dir) / "latest.json"
    if not latest.is_file():
        return None
    return Path(run_dir) / json.loads(latest.read_text())["weights"]
