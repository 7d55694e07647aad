"""Atomic file writing and checked reading: every file zoomrl writes appears whole or not at all, and every file
it reads back is either whole or reported in one line naming it."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

TMP_MARK = ".tmp"
"""Temporary files are ``.<name>.<random>.tmp<suffix>`` beside their target (see :func:`remove_stale_temporaries`)."""


class FileDamagedError(ValueError):
    """A file zoomrl wrote earlier cannot be read back whole; the message names it."""


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, on error remove it.

    ``suffix`` keeps an extension some writers insist on (Keras wants ``.weights.h5``, Matplotlib ``.png``).
    A full disk or any other error leaves ``path`` as it was and no temporary file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = suffix if suffix is not None else "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_MARK + suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
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


def _default(obj: Any) -> Any:
    from zoomrl.core.config import json_default

    return json_default(obj)


def write_json(path: str | os.PathLike, data: Any, indent: int | None = 2) -> None:
    """Write ``data`` as JSON atomically (NumPy scalars and arrays converted)."""
    text = json.dumps(data, indent=indent, default=_default)
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
