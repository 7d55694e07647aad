"""Atomic file writing and checked reading: every file zoomrl writes appears whole or not at all, and every file
it reads back is either whole or reported in one line naming it."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

TMP_MARK = ".tmp"
"""Temporary files are ``.<name>.<random>.tmp<suffix>`` beside their target (see :func:`remove_stale_temporaries`)."""


class FileDamagedError(ValueError):
    """A file zoomrl wrote earlier cannot be read back whole; the message names it."""


MIN_FREE_BYTES = 1 << 20
"""Every :func:`atomic_path` write first checks that at least this much is free where it writes (1 MiB)."""

FREE_SPACE_MARGIN = 16 << 20
"""What :func:`ensure_free_space` wants free beyond the expected size of a file (16 MiB): HDF5 and Keras write
metadata and may grow a file past its payload."""

_FULL_ERRNOS = {errno.ENOSPC} | ({errno.EDQUOT} if hasattr(errno, "EDQUOT") else set())


class DiskFullError(OSError):
    """No space left to write a file. ``str()`` is one line naming the file; ``errno`` is ``ENOSPC``."""

    def __init__(self, path: str | os.PathLike, detail: str = "") -> None:
        super().__init__(errno.ENOSPC, "No space left on device")
        self.path = Path(path)
        self.message = (
            f"{self.path}: no space left on device{(' (' + detail + ')') if detail else ''}; "
            "the previous file, if any, is kept: free some space and run again"
        )

    def __str__(self) -> str:
        return self.message


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or quota) is full: ``ENOSPC``/``EDQUOT``, or an HDF5 error quoting it."""
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return True
    text = str(exc)
    return "No space left on device" in text or "Disk quota exceeded" in text or "errno = 28," in text


def _existing_parent(path: Path) -> Path:
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def free_bytes(path: str | os.PathLike) -> int:
    """Bytes free to an unprivileged writer on the file system that holds ``path`` (or its nearest existing
    parent folder)."""
    return int(shutil.disk_usage(_existing_parent(Path(path).absolute())).free)


def ensure_free_space(path: str | os.PathLike, expected_bytes: int, margin: int = FREE_SPACE_MARGIN) -> None:
    """Raise :class:`DiskFullError` naming ``path`` unless ``expected_bytes + margin`` bytes are free where it goes.

    Call it before a writer that cannot fail cleanly on a full disk (HDF5, so Keras ``save_weights`` and
    h5py): e.g. ``ensure_free_space(path, sum(w.nbytes for w in weights))`` then ``atomic_path``. See also
    :func:`checked_atomic_path`.
    """
    if expected_bytes < 0:
        raise ValueError(f"expected_bytes must be >= 0, received {expected_bytes}")
    need = int(expected_bytes) + int(margin)
    have = free_bytes(path)
    if have < need:
        raise DiskFullError(path, f"needs about {_mb(need)}, {_mb(have)} free")


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


@contextmanager
def checked_atomic_path(
    path: str | os.PathLike, expected_bytes: int, suffix: str | None = None, margin: int = FREE_SPACE_MARGIN
) -> Iterator[Path]:
    """:func:`ensure_free_space` then :func:`atomic_path`: the way to write HDF5 files (Keras weights)."""
    ensure_free_space(path, expected_bytes, margin)
    with atomic_path(path, suffix=suffix) as tmp:
        yield tmp


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, on error remove it.

    ``suffix`` keeps an extension some writers insist on (Keras wants ``.weights.h5``, Matplotlib ``.png``).
    A full disk or any other error leaves ``path`` as it was and no temporary file behind; a full disk (less
    than :data:`MIN_FREE_BYTES` free before writing, or ``ENOSPC`` while writing) raises :class:`DiskFullError`,
    one line naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = suffix if suffix is not None else "".join(path.suffixes)
    ensure_free_space(path, 0, margin=MIN_FREE_BYTES)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_MARK + suffix, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFullError(path) from None
        raise
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    except BaseException as exc:
        tmp_path.unlink(missing_ok=True)
        if is_disk_full(exc) and not isinstance(exc, DiskFullError):
            raise DiskFullError(path) from None
        raise


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Delete temporary files that an earlier, killed run left in ``folder`` (call it while holding the folder's
    lock, so no live writer owns them). Returns how many were removed."""
    n = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for p in folder.iterdir():
        if p.name.startswith(".") and TMP_MARK in p.name and p.is_file():
            p.unlink(missing_ok=True)
            n += 1
    return n


def json_default(obj: Any) -> Any:
    """``json.dumps`` ``default`` for NumPy values and paths."""
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json(path: str | os.PathLike, data: Any, indent: int | None = 2) -> None:
    """Write ``data`` as JSON atomically (NumPy scalars and arrays converted)."""
    text = json.dumps(data, indent=indent, default=json_default)
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(text)


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """Read a JSON file; a missing, empty, truncated or invalid one raises a one-line error naming it."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FileDamagedError(f"{path}: unreadable {what} ({exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileDamagedError(f"{path}: damaged {what}, not valid JSON ({exc.msg} at line {exc.lineno})") from None
