"""Run folders: a lock, epoch checkpoints with a completion sentinel, the last N kept, and the best one.

After Dopamine's checkpointer. A run folder (``<model dir>/<name>/``) holds:

* ``epoch_<k>.<what>`` files, one set per saved epoch (1-based ``k``), written by the family;
* run-wide files rewritten every epoch (for example ``training_state.npz``: optimizer, replay, random states);
* ``latest.json``, the completion sentinel, written last: ``{"epoch": k, "files": [...], ...}``. Until it names
  epoch ``k``, epoch ``k`` does not exist, so a run killed at any instant leaves the previous checkpoint whole;
* ``best.<what>`` copies of the epoch with the best score so far and ``best.json`` (``{"epoch", "score",
  "metric"}``), when the family gives a score;
* ``.lock``, held (``fcntl.flock``) by the one run that writes into the folder;
* ``previous_run/``: a finished run that a new run (not ``--resume``) found in the folder, moved aside whole
  (TensorBoard events included) by :func:`stash_previous_run`.

Only the last ``keep`` epochs' files are kept (``None``: all); the best epoch survives as its ``best.*`` copy.

An old run is never lost to a new one that saves nothing: ``previous_run/`` is deleted only once the new run's
first epoch is saved (by :meth:`Checkpointer.save`); until then, whenever the folder's lock is taken or released
(a new run interrupted by Ctrl-C, failing, or killed outright and followed by any later run), the old run is moved
back into place (:func:`restore_previous_run`), so ``--resume`` and ``test`` find it where they look.

Run-wide state files (``training_state.npz``) are read by :func:`read_state` for every family: a damaged one is a
one-line :class:`~zoomrl.core.io.FileDamagedError` naming it, whatever NumPy, zipfile or zlib raised.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from zoomrl.core.io import FileDamagedError, atomic_path, read_json, remove_stale_temporaries, write_json

EPOCH_FILE = re.compile(r"^epoch_(\d+)\.(.+)$")
LATEST = "latest.json"
BEST = "best.json"
PREVIOUS = "previous_run"

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


class RunLockedError(RuntimeError):
    """Another live process writes into this run folder."""


class RunLock:
    """An exclusive lock on a run folder for the life of one run (released on exit, or by the OS on a crash).

    ``fcntl.flock`` works on local disks and on most network file systems; a second run in the same folder stops
    at once with one line instead of mixing its files with the first one's."""

    def __init__(self, run_dir: str | os.PathLike, log: Log | None = None) -> None:
        self.run_dir = Path(run_dir)
        self._fd: int | None = None
        self.log = log or _stderr

    def acquire(self) -> RunLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.run_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunLockedError(
                f"{self.run_dir}: another run is writing into this folder; wait for it or use another --model-dir"
            ) from None
        self._fd = fd
        # Nobody else writes here now: temporary files are a killed run's leftovers, and a previous_run/ without
        # a finished run beside it is an old run whose successor died before its first epoch (kill -9).
        remove_stale_temporaries(self.run_dir)
        restore_previous_run(self.run_dir, self.log)
        return self

    def release(self) -> None:
        if self._fd is not None:
            # A new run that stops before its first epoch is saved (Ctrl-C, SIGTERM, an error) gives the folder
            # back to the run it displaced; still holding the lock, so no one else sees the folder in between.
            try:
                restore_previous_run(self.run_dir, self.log)
            except OSError as exc:
                self.log(
                    f"warning: {self.run_dir / PREVIOUS}: could not be moved back ({exc}); the earlier run "
                    f"is whole there and is restored by the next run in this folder"
                )
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


Writer = Callable[[Path], None]


def epoch_file(epoch: int, what: str) -> str:
    """``epoch_<k>.<what>``, e.g. ``epoch_3.weights.h5``."""
    return f"epoch_{epoch}.{what}"


def read_latest(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The completion sentinel of ``run_dir``, or None when no epoch finished; a damaged one names itself."""
    path = Path(run_dir) / LATEST
    if not path.is_file():
        return None
    data = read_json(path, what="checkpoint sentinel")
    if not isinstance(data, dict) or not isinstance(data.get("epoch"), int):
        raise FileDamagedError(f"{path}: damaged checkpoint sentinel, expected an object with an integer 'epoch'")
    return data


class Checkpointer:
    """Writes a family's epoch checkpoints into a run folder (see the module docstring).

    ``keep``: how many epochs' files to keep (None keeps all). ``mode``: ``"max"`` or ``"min"`` for the score
    passed to :meth:`save` (``None`` scores never make a best)."""

    def __init__(
        self, run_dir: str | os.PathLike, keep: int | None = 3, metric: str = "score", mode: str = "max"
    ) -> None:
        if keep is not None and keep < 1:
            raise ValueError(f"keep_checkpoints must be a positive integer or 'all', received {keep}")
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', received {mode!r}")
        self.run_dir = Path(run_dir)
        self.keep = keep
        self.metric = metric
        self.mode = mode

    def save(
        self,
        epoch: int,
        epoch_writers: Mapping[str, Writer],
        run_writers: Mapping[str, Writer] | None = None,
        info: Mapping[str, Any] | None = None,
        score: float | None = None,
    ) -> dict[str, Any]:
        """Write epoch ``epoch``: each ``epoch_writers[what]`` fills ``epoch_<k>.<what>``, each ``run_writers[name]``
        fills ``name``; then the sentinel (with ``info``), the best copy and the pruning. Returns the sentinel."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        files: dict[str, str] = {}
        for what, write in epoch_writers.items():
            name = epoch_file(epoch, what)
            with atomic_path(self.run_dir / name, suffix="." + what) as tmp:
                write(tmp)
            files[what] = name
        for name, write in (run_writers or {}).items():
            with atomic_path(self.run_dir / name, suffix="".join(Path(name).suffixes)) as tmp:
                write(tmp)
        sentinel = {**(info or {}), "epoch": int(epoch), "files": files}
        write_json(self.run_dir / LATEST, sentinel)
        # This run has a finished epoch now: the run it displaced is no longer its fallback (said at the stash).
        shutil.rmtree(self.run_dir / PREVIOUS, ignore_errors=True)
        if score is not None:
            self._update_best(epoch, files, float(score))
        self.prune(epoch)
        return sentinel

    def best(self) -> dict[str, Any] | None:
        path = self.run_dir / BEST
        return read_json(path, what="best-checkpoint record") if path.is_file() else None

    def _update_best(self, epoch: int, files: Mapping[str, str], score: float) -> None:
        best = self.best()
        if best is not None and best.get("score") is not None:
            old = float(best["score"])
            if (score <= old) if self.mode == "max" else (score >= old):
                return
        for what, name in files.items():
            with atomic_path(self.run_dir / f"best.{what}", suffix="." + what) as tmp:
                shutil.copyfile(self.run_dir / name, tmp)
        write_json(
            self.run_dir / BEST,
            {"epoch": epoch, "score": score, "metric": self.metric, "files": {what: f"best.{what}" for what in files}},
        )

    def prune(self, last_epoch: int) -> list[Path]:
        """Delete epoch files older than the last ``keep`` epochs; returns what was deleted."""
        if self.keep is None:
            return []
        removed = []
        for p in self.run_dir.iterdir():
            m = EPOCH_FILE.match(p.name)
            if m and int(m.group(1)) <= last_epoch - self.keep:
                p.unlink(missing_ok=True)
                removed.append(p)
        return removed

    def clear(self) -> None:
        """Remove every checkpoint file of an earlier run (a fresh run in the folder, once its first epoch is
        about to be written)."""
        for p in self.run_dir.iterdir() if self.run_dir.is_dir() else ():
            if EPOCH_FILE.match(p.name) or p.name.startswith("best.") or p.name == BEST:
                p.unlink(missing_ok=True)


def parse_keep(text: str | int | None) -> int | None:
    """``--keep-checkpoints``: a positive integer, or ``all`` (None)."""
    if text is None or text == "all":
        return None
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ValueError(f"--keep-checkpoints expects a positive integer or 'all', received {text!r}") from None
    if value < 1:
        raise ValueError(f"--keep-checkpoints expects a positive integer or 'all', received {text!r}")
    return value


def _movable(p: Path) -> bool:
    """Entries of a run folder that belong to a run (not the lock, temporaries or the displaced run)."""
    return p.name != PREVIOUS and not p.name.startswith(".")


def stash_previous_run(run_dir: str | os.PathLike, log: Log) -> Path | None:
    """A new run (not ``--resume``) in ``run_dir``: move a finished run found there, every file and folder of it
    (``tensorboard/`` too, or TensorBoard would show both runs as one), into ``run_dir/previous_run/``; returns
    that folder, or None when there was no finished run. Call it holding the folder's :class:`RunLock`.

    A ``previous_run/`` already there beside a finished run is the run that one displaced, whose deletion was
    cut short after the finished run's first epoch: it is deleted, saying so."""
    run_dir = Path(run_dir)
    if not (run_dir / LATEST).is_file():
        return None
    previous = run_dir / PREVIOUS
    if previous.exists():
        log(f"note: deleting {previous}, a run displaced by the finished run in {run_dir}")
        shutil.rmtree(previous)
    previous.mkdir()
    for p in sorted(run_dir.iterdir()):
        if _movable(p):
            os.replace(p, previous / p.name)
    log(
        f"note: {run_dir} held a finished run; it waits in {previous} and is deleted when this run's first epoch "
        f"is saved, or moved back if this run stops before (stop now and use --resume to continue it instead)"
    )
    return previous


def restore_previous_run(run_dir: str | os.PathLike, log: Log) -> bool:
    """Move ``run_dir/previous_run/`` back into ``run_dir`` when no run has finished an epoch there since it was
    stashed (no ``latest.json`` in ``run_dir``); what the stopped new run left (TensorBoard events, a
    ``config.json``; never a finished epoch) is deleted first. Returns whether it restored. Call it holding the
    folder's lock."""
    run_dir = Path(run_dir)
    previous = run_dir / PREVIOUS
    if not previous.is_dir() or (run_dir / LATEST).exists() or not (previous / LATEST).is_file():
        return False
    for p in sorted(run_dir.iterdir()):
        if _movable(p):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
    # latest.json last: until it is back, a half-restored folder reads as "no finished run" and the rest waits
    # in previous_run/ for the next try.
    for name in sorted((p.name for p in previous.iterdir()), key=lambda n: n == LATEST):
        os.replace(previous / name, run_dir / name)
    previous.rmdir()
    log(f"note: restored the earlier run in {run_dir} from {PREVIOUS}/ (the new run saved no epoch)")
    return True


def previous_run_hint(run_dir: str | os.PathLike) -> str:
    """For messages that say a folder has no finished run: where an earlier one waits, if it does."""
    previous = Path(run_dir) / PREVIOUS
    if (previous / LATEST).is_file():
        return (
            f"; an earlier run waits in {previous} (any train command in this folder moves it back first, "
            f"or pass --checkpoint with a file of it)"
        )
    return ""


def read_state(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of a run-state file (``.npz``), read whole. Every family reads its ``training_state.npz``
    through this: a missing file is a :class:`FileNotFoundError` and a damaged one (empty, truncated, not a zip,
    a member failing its CRC or decompression, an object array) a :class:`FileDamagedError`, each one line naming
    the file, whatever NumPy, zipfile or zlib raised."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such training state (needed by --resume)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: np.asarray(npz[k]) for k in npz.files}
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile, zlib, NumPy and the OS raise many kinds for damage
        detail = str(exc).splitlines()[0][:120] if str(exc) else ""
        raise FileDamagedError(
            f"{path}: damaged or truncated training state ({type(exc).__name__}"
            f"{': ' + detail if detail else ''}); resume from a whole copy or train afresh "
            f"without --resume"
        ) from None
