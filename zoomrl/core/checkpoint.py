"""Run folders: a lock, epoch checkpoints with a completion sentinel, the last N kept, and the best one.

After Dopamine's checkpointer. A run folder (``<model dir>/<name>/``) holds:

* ``epoch_<k>.<what>`` files, one set per saved epoch (1-based ``k``), written by the family;
* run-wide files rewritten every epoch (for example ``training_state.npz``: optimizer, replay, random states);
* ``latest.json``, the completion sentinel, written last: ``{"epoch": k, "files": [...], ...}``. Until it names
  epoch ``k``, epoch ``k`` does not exist, so a run killed at any instant leaves the previous checkpoint whole;
* ``best.<what>`` copies of the epoch with the best score so far and ``best.json`` (``{"epoch", "score",
  "metric"}``), when the family gives a score;
* ``.lock``, held (``fcntl.flock``) by the one run that writes into the folder.

Only the last ``keep`` epochs' files are kept (``None``: all); the best epoch survives as its ``best.*`` copy.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from zoomrl.core.io import FileDamagedError, atomic_path, read_json, remove_stale_temporaries, write_json

EPOCH_FILE = re.compile(r"^epoch_(\d+)\.(.+)$")
LATEST = "latest.json"
BEST = "best.json"


class RunLockedError(RuntimeError):
    """Another live process writes into this run folder."""


class RunLock:
    """An exclusive lock on a run folder for the life of one run (released on exit, or by the OS on a crash).

    ``fcntl.flock`` works on local disks and on most network file systems; a second run in the same folder stops
    at once with one line instead of mixing its files with the first one's."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.run_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunLockedError(f"{self.run_dir}: another run is writing into this folder; wait for it or use "
                                 f"another --model-dir") from None
        self._fd = fd
        # Nobody else writes here now: temporary files are a killed run's leftovers.
        remove_stale_temporaries(self.run_dir)
        return self

    def release(self) -> None:
        if self._fd is not None:
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

    def __init__(self, run_dir: str | os.PathLike, keep: int | None = 3, metric: str = "score",
                 mode: str = "max") -> None:
        if keep is not None and keep < 1:
            raise ValueError(f"keep_checkpoints must be a positive integer or 'all', received {keep}")
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', received {mode!r}")
        self.run_dir = Path(run_dir)
        self.keep = keep
        self.metric = metric
        self.mode = mode

    def save(self, epoch: int, epoch_writers: Mapping[str, Writer], run_writers: Mapping[str, Writer] | None = None,
             info: Mapping[str, Any] | None = None, score: float | None = None) -> dict[str, Any]:
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
        write_json(self.run_dir / BEST, {"epoch": epoch, "score": score, "metric": self.metric,
                                         "files": {what: f"best.{what}" for what in files}})

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
