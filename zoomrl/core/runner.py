"""One run driver for every family: the run folder, fresh start or ``--resume``, checkpoints, guards and logs.

A family's ``train`` builds what it trains (data, features, agents) as a :class:`Trainee` and hands it to
:meth:`Runner.train`, which owns everything a run folder needs and no family should write again:

* the folder's :class:`~zoomrl.core.checkpoint.RunLock`, held from before the trainee is built to the end;
* ``--resume``: the sentinel, ``config.json`` against the allow-list of fields a resumed run may change, the run
  state (``training_state.npz``: the trainee's arrays plus ``epoch``, ``meta`` and the ``history``), then the
  trainee's weights and state; every damaged or foreign file is a one-line :class:`CheckpointError`;
* a fresh start: a finished earlier run is stashed in ``previous_run/`` (restored if this run saves no epoch,
  :func:`~zoomrl.core.checkpoint.stash_previous_run`), leftover epoch files of a run that never finished one are
  removed; then the trainee's own fresh-start work (:meth:`Trainee.init_fresh`: demonstrations, a warm-up);
* one progress bar per epoch, the epoch's log line, its TensorBoard scalars (:mod:`zoomrl.core.tblog`);
* the non-finite guard (a :class:`FloatingPointError` from the epoch is one line naming it, nothing saved);
* per-epoch checkpoints (``epoch_<k>.weights.h5``, run state, ``config.json``, the ``latest.json`` sentinel, the
  last ``keep`` epochs, ``best.*``) through :class:`~zoomrl.core.checkpoint.Checkpointer`;
* SIGTERM as Ctrl-C while the run lasts (when no handler is installed already), so the lock's release gives the
  folder back whole.

Plain Python and NumPy: the trainee touches Keras, the driver does not (seeding Keras stays with the family).
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from zoomrl.core.checkpoint import (
    EPOCH_FILE,
    LATEST,
    Checkpointer,
    RunLock,
    epoch_file,
    read_latest,
    read_state,
    stash_previous_run,
)
from zoomrl.core.config import ConfigBase, ConfigError
from zoomrl.core.io import FileDamagedError, ensure_free_space, read_json

STATE_FILE = "training_state.npz"
WEIGHTS = "weights.h5"
CONFIG_FILE = "config.json"

Log = Callable[[str], None]
Progress = Callable[[int], None]


class CheckpointError(ValueError):
    """A checkpoint that does not fit this run, or cannot be read; the message says which file and why."""


class Bar(Protocol):
    def update(self, n: int = 1) -> Any: ...


BarFactory = Callable[[int, str], contextlib.AbstractContextManager[Bar]]
"""``bar(total, description)``: a progress bar (a context manager) in the run's style (off with ``--quiet``)."""


@dataclass
class EpochResult:
    """What one epoch gives the driver."""

    record: dict[str, Any]
    """The history entry (its numbers become TensorBoard scalars; ``epoch`` is the 1-based epoch)."""
    line: str
    """The log line ('' logs none: a family that is quiet about all but some epochs)."""
    score: float | None = None
    """The checkpointer's ``best`` score (higher is better); None never makes a best."""


class Trainee(Protocol):
    """What a family hands the driver. ``state()``/``restore()`` round-trip everything but the weights, so that a
    resumed run continues bit for bit."""

    meta: Mapping[str, Any]
    """What a checkpoint of this run is for; stored in the run state and compared on ``--resume``."""
    metric: str
    """Name of :attr:`EpochResult.score` (``best.json``'s ``metric``)."""
    units: int
    """Progress-bar steps in one epoch."""

    def init_fresh(self, bar: BarFactory) -> None:
        """A fresh start's own work before epoch 1 (never on a resume)."""

    def run_epoch(self, epoch: int, progress: Progress) -> EpochResult:
        """Train 0-based ``epoch``; ``progress(n)`` advances the bar."""

    def state(self) -> dict[str, np.ndarray]:
        """Everything but the weights an exact resume needs (optimizers, memories, counters, random states)."""

    def restore(self, state: Mapping[str, np.ndarray]) -> None:
        """Take back :meth:`state`'s arrays (a mismatch is a ``KeyError`` or ``ValueError``)."""

    def save_weights(self, path: Path) -> None: ...

    def load_weights(self, path: Path) -> None:
        """Load weights a checkpoint wrote; refuse foreign ones with a :class:`CheckpointError`."""

    def before_save(self, history: Sequence[Mapping[str, Any]]) -> None:
        """Epoch over, checkpoint next (e.g. record in the configuration what ``config.json`` must hold)."""

    def after_save(self, history: Sequence[Mapping[str, Any]]) -> None:
        """Checkpoint written (side files, caches, plots)."""

    def close(self) -> None:
        """The run is over, however it ended."""


class AgentTrainee(Trainee):
    """A trainee around one agent (``self.agent``: ``get_state``/``set_state``, ``save_weights``/``load_weights``,
    as :class:`zoomrl.agents.base.Agent`): its run state and weights are the agent's. A subclass sets ``agent``,
    ``meta``, ``metric`` and ``units`` and writes :meth:`run_epoch`; :class:`Trainee`'s other methods do nothing
    unless it overrides them."""

    agent: Any

    def state(self) -> dict[str, np.ndarray]:
        return self.agent.get_state()

    def restore(self, state: Mapping[str, np.ndarray]) -> None:
        self.agent.set_state(state)

    def save_weights(self, path: Path) -> None:
        self.agent.save_weights(path)

    def load_weights(self, path: Path) -> None:
        self.agent.load_weights(path)


@dataclass
class RunResult:
    run_dir: Path
    history: list[dict[str, Any]]
    start_epoch: int
    """Epochs finished before this run (resumed), 0 on a fresh start."""
    weights: Path | None
    """The last epoch's weights; None when no epoch ran."""
    seconds: float = 0.0
    trainee: Any = field(default=None, repr=False)


def check_meta(
    found: Mapping[str, Any], expected: Mapping[str, Any], where: Path, keys: Sequence[str] | None = None
) -> None:
    """Raise :class:`CheckpointError` naming the first of ``keys`` (None: every key of ``expected``) on which
    ``found`` and ``expected`` both have a value and differ."""
    for key in expected if keys is None else keys:
        if key in found and key in expected and str(found[key]) != str(expected[key]):
            raise CheckpointError(f"{where}: checkpoint is for {key}={found[key]}, this run has {key}={expected[key]}")


def check_resume_config(
    saved: Mapping[str, Any],
    config: ConfigBase,
    fields: Sequence[str] | None,
    where: Path,
    changeable: Collection[str] = (),
) -> None:
    """A resumed run keeps the hyperparameters it was started with: ``fields`` must match (None: every saved
    field not in ``changeable``, the allow-list)."""
    now = config.to_dict()
    names = [k for k in saved if k not in changeable] if fields is None else fields
    diffs = [f"{k}={now.get(k)!r} (run has {saved[k]!r})" for k in names if k in saved and saved[k] != now.get(k)]
    if diffs:
        raise ConfigError(
            f"--resume: {', '.join(diffs)} differ from {where}; a resumed run keeps its "
            f"hyperparameters (drop those flags, or start a new run in another --model-dir)"
        )


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`KeyboardInterrupt` (as the CLI's ``run_guarded`` does), so
    ``finally`` blocks and the run lock's release run; only from the main thread and only when no handler is
    installed already (the CLI's, or the caller's own, is left alone)."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@dataclass
class Runner:
    """Drives one trainee in one run folder (see the module docstring).

    ``fields``: the configuration fields a resumed run must keep; or None with ``changeable``, the allow-list of
    fields it may change. ``meta_keys``: the meta keys compared on resume (None: all). ``history_in_sentinel``:
    ``latest.json`` holds the history too (glimpse's documented layout; the run state holds it either way), and a run
    state without epoch and meta, saved before this driver, is completed from it on ``--resume``."""

    run_dir: Path
    config: ConfigBase
    epochs: int
    fields: Sequence[str] | None = None
    changeable: Collection[str] = ("epochs",)
    resume: bool = False
    keep: int | None = 3
    log: Log = print
    show_progress: bool = True
    tensorboard: bool = True
    meta_keys: Sequence[str] | None = None
    history_in_sentinel: bool = False

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)

    def bar(self, total: int, description: str) -> contextlib.AbstractContextManager[Bar]:
        from tqdm import tqdm

        return tqdm(total=total, desc=description, unit="img", disable=not self.show_progress, leave=False)

    def train(self, setup: Callable[[], Trainee]) -> RunResult:
        """Take the folder's lock, build the trainee (``setup``, under the lock), resume or start afresh, run the
        epochs up to ``epochs``, saving each. The trainee is closed however the run ends."""
        run_dir, log = self.run_dir, self.log
        with sigterm_as_interrupt(), RunLock(run_dir):
            trainee = setup()
            try:
                start, history = self.restore(trainee) if self.resume else (0, [])
                if self.resume:
                    log(
                        f"resume: continuing {run_dir} after epoch {start}"
                        if start
                        else f"resume: nothing to resume in {run_dir}, starting afresh"
                    )
                if start >= self.epochs:
                    log(
                        f"nothing to train: {run_dir} has {start} epochs, --epochs is {self.epochs}; "
                        f"no checkpoint written"
                    )
                    return RunResult(run_dir, history, start, None, trainee=trainee)
                if not start and stash_previous_run(run_dir, log) is None:
                    Checkpointer(run_dir).clear()  # epoch files without a sentinel: an epoch cut short
                return self._epochs(trainee, start, history)
            finally:
                trainee.close()

    def _epochs(self, trainee: Trainee, start: int, history: list[dict[str, Any]]) -> RunResult:
        checkpointer = Checkpointer(self.run_dir, keep=self.keep, metric=trainee.metric)
        tb = None
        if self.tensorboard:
            from zoomrl.core.tblog import ScalarLogger

            tb = ScalarLogger(self.run_dir / "tensorboard", self.log)
        weights = None
        t0 = time.perf_counter()
        try:
            if not start:
                trainee.init_fresh(self.bar)
            for epoch in range(start, self.epochs):
                with self.bar(trainee.units, f"epoch {epoch + 1}/{self.epochs}") as bar:
                    try:
                        result = trainee.run_epoch(epoch, bar.update)
                    except FloatingPointError as exc:
                        raise ValueError(
                            f"epoch {epoch + 1}: {exc}; nothing of this epoch was saved (lower --learning-rate?)"
                        ) from None
                history.append(result.record)
                if result.line:
                    self.log(result.line)
                if tb is not None:
                    tb.scalars(epoch + 1, {k: v for k, v in result.record.items() if k != "epoch"})
                trainee.before_save(history)
                weights = self.save(checkpointer, epoch + 1, trainee, history, result.score)
                trainee.after_save(history)
        finally:
            if tb is not None:
                tb.close()
        return RunResult(self.run_dir, history, start, weights, time.perf_counter() - t0, trainee)

    def save(
        self,
        checkpointer: Checkpointer,
        epoch: int,
        trainee: Trainee,
        history: Sequence[Mapping[str, Any]],
        score: float | None,
    ) -> Path:
        """Write 1-based ``epoch`` (weights, run state, config, sentinel, best, pruning); returns the weights."""
        state = trainee.state()
        state.update(
            {
                "epoch": np.array(epoch),
                "meta": np.array(json.dumps(dict(trainee.meta))),
                "history": np.array(json.dumps(list(history))),
            }
        )

        def write_state(p: Path) -> None:
            ensure_free_space(p, sum(int(np.asarray(v).nbytes) for v in state.values()))
            with open(p, "wb") as f:
                np.savez(f, **state)

        config = self.config.to_dict()
        sentinel = checkpointer.save(
            epoch,
            {WEIGHTS: trainee.save_weights},
            {STATE_FILE: write_state, CONFIG_FILE: lambda p: p.write_text(json.dumps(config, indent=2))},
            info={
                "weights": epoch_file(epoch, WEIGHTS),
                **({"history": list(history)} if self.history_in_sentinel else {}),
            },
            score=score,
        )
        return checkpointer.run_dir / sentinel["files"][WEIGHTS]

    def restore(self, trainee: Trainee) -> tuple[int, list[dict[str, Any]]]:
        """Load the last finished epoch of the run folder into ``trainee``; returns ``(epoch, history)``, ``(0, [])``
        when none finished. Every damaged or foreign file raises a one-line :class:`CheckpointError`."""
        run_dir = self.run_dir
        try:
            latest = read_latest(run_dir)
        except FileDamagedError as exc:
            raise CheckpointError(str(exc)) from None
        if latest is None:
            return 0, []
        cfg_path = run_dir / CONFIG_FILE
        try:
            saved = read_json(cfg_path, what="configuration")
        except (FileNotFoundError, FileDamagedError) as exc:
            raise CheckpointError(str(exc)) from None
        check_resume_config(saved, self.config, self.fields, cfg_path, self.changeable)
        path = run_dir / STATE_FILE
        try:
            data = read_state(path)  # every kind of damage is one line naming the file
        except FileNotFoundError:
            raise CheckpointError(
                f"{path}: missing; {run_dir / LATEST} says epoch {latest['epoch']} finished"
            ) from None
        except FileDamagedError as exc:
            raise CheckpointError(str(exc)) from None
        if ("epoch" not in data or "meta" not in data) and self.history_in_sentinel and "history" in latest:
            # Saved before the driver (glimpse's first layout): the agent's arrays alone, the epoch and the history
            # in the sentinel. Completed here; the next checkpoint writes today's layout.
            meta, history = json.dumps(dict(trainee.meta)), json.dumps(list(latest["history"]))
            data.update(epoch=np.array(int(latest["epoch"])), meta=np.array(meta), history=np.array(history))
        if "epoch" not in data or "meta" not in data:
            raise CheckpointError(f"{path}: not a zoomrl training state (no epoch or meta)")
        if int(data["epoch"]) != int(latest["epoch"]):
            raise CheckpointError(
                f"{path}: holds epoch {int(data['epoch'])}, {run_dir / LATEST} says {latest['epoch']}"
            )
        check_meta(json.loads(str(data["meta"])), trainee.meta, path, self.meta_keys)
        trainee.load_weights(run_dir / str(latest.get("weights", epoch_file(int(latest["epoch"]), WEIGHTS))))
        try:
            trainee.restore(data)
        except CheckpointError:
            raise
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"{path}: does not fit this agent ({exc})") from None
        return int(data["epoch"]), json.loads(str(data["history"]))


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """The per-epoch history of the run in ``run_dir`` (its run state's ``history``: one dict per finished epoch,
    what the epoch's log line and TensorBoard scalars showed). A missing or damaged state file is one line naming
    it (:func:`~zoomrl.core.checkpoint.read_state`); a state without a history is a :class:`ValueError`."""
    path = Path(run_dir) / STATE_FILE
    data = read_state(path)
    if "history" not in data:
        raise ValueError(f"{path}: holds no history (saved before the run driver; train the run again)")
    return list(json.loads(str(data["history"])))


def rewind_run(
    run_dir: Path, epoch: int, write_weights: Callable[[Path], None], state: Mapping[str, np.ndarray] | None = None
) -> None:
    """Make the run in ``run_dir`` end at 1-based ``epoch``, so that a resumed run trains again from there (a
    family that retrains a later part of its run, patchdrop's ``--stage N``): a checkpoint of ``epoch`` first
    (``write_weights`` fills its weights file; the run state holds ``state``, the saved meta and the history up to
    ``epoch``), so that an interruption leaves a whole run, then the files of the later epochs removed."""
    saved = read_state(run_dir / STATE_FILE)
    history = [h for h in json.loads(str(saved["history"])) if h["epoch"] <= epoch]
    run = {**(state or {}), "epoch": np.array(epoch), "meta": saved["meta"], "history": np.array(json.dumps(history))}

    def write_state(p: Path) -> None:
        with open(p, "wb") as f:
            np.savez(f, **run)

    info = {"weights": epoch_file(epoch, WEIGHTS)}
    Checkpointer(run_dir, keep=None).save(epoch, {WEIGHTS: write_weights}, {STATE_FILE: write_state}, info=info)
    for p in run_dir.iterdir():
        m = EPOCH_FILE.match(p.name)
        if m and int(m.group(1)) > epoch:
            p.unlink()


__all__ = [
    "AgentTrainee",
    "CONFIG_FILE",
    "STATE_FILE",
    "WEIGHTS",
    "CheckpointError",
    "EpochResult",
    "RunResult",
    "Runner",
    "Trainee",
    "check_meta",
    "check_resume_config",
    "read_history",
    "rewind_run",
    "sigterm_as_interrupt",
]
