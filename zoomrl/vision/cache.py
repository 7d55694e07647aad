"""The on-disk feature cache: descriptors or maps in one HDF5 file that later runs reuse."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Hashable, Sequence

import numpy as np


class DiskCache:
    """Descriptors (or maps) in one HDF5 file, keyed by a hash of the cache key.

    The file's attributes hold ``meta`` (variant, weight fingerprint, input size); a file built with other
    values is removed and started again, saying so through ``log``.
    """

    def __init__(self, path: Path, meta: dict[str, str], log: Callable[[str], None] = print) -> None:
        import h5py

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._h5py = h5py
        f = None
        if self.path.exists():
            try:
                f = h5py.File(self.path, "a")
                stored = {k: str(f.attrs.get(k, "")) for k in meta}
                if stored != meta:
                    log(f"feature cache {self.path}: built with {stored}, now {meta}; discarding it")
                    f.close()
                    f = None
                    self.path.unlink()
            except OSError as exc:
                if "lock" in str(exc).lower():
                    # Another run holds it: never touch what may be another run's file.
                    raise OSError(
                        f"feature cache {self.path} is locked by another run ({exc}); pass another --feature-cache"
                    ) from None
                # A run killed while writing leaves a damaged file: keep it aside, start a new one, say so.
                aside = self.path.with_name(self.path.name + f".damaged-{os.getpid()}")
                os.replace(self.path, aside)
                log(f"feature cache {self.path}: damaged ({str(exc)[:80]}); moved to {aside.name}, starting a new one")
                f = None
        if f is None:
            f = h5py.File(self.path, "w")
            for k, v in meta.items():
                f.attrs[k] = v
        self.file = f
        self.hits = 0
        self.writes = 0

    @staticmethod
    def _name(key: Hashable) -> str:
        return hashlib.sha1(repr(key).encode()).hexdigest()

    def get(self, key: Hashable) -> list[np.ndarray] | None:
        name = self._name(key)
        if name not in self.file:
            return None
        self.hits += 1
        group = self.file[name]
        return [np.asarray(group[str(i)]) for i in range(len(group))]

    def put(self, key: Hashable, arrays: Sequence[np.ndarray]) -> None:
        name = self._name(key)
        if name in self.file:
            return
        group = self.file.create_group(name)
        for i, a in enumerate(arrays):
            group.create_dataset(str(i), data=a)
        self.writes += 1

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        try:
            self.file.close()
        except Exception:  # noqa: BLE001 - closing twice or at interpreter exit
            pass
