"""The on-disk feature cache: descriptors or maps in one HDF5 file that later runs reuse.

Faults it handles (see docs/faults.md):

* **Sharing.** One run at a time owns a cache file. It holds an exclusive ``fcntl.flock`` on a lock file beside it
  (``<name>.h5.lock``, which records the owner's pid and host) for as long as the cache is open; a second run that
  finds the lock held stops at once with one line (:class:`CacheBusyError`) naming the file and the owner, instead
  of writing into the same HDF5 file. This does not depend on HDF5's own file locking, which is often switched off
  (``HDF5_USE_FILE_LOCKING=FALSE``) on network file systems, so HDF5's locking is not used. The kernel drops the
  lock when the owner dies, however it dies, so a lock file left behind never blocks anyone; it is never deleted
  (deleting lock files races with their next owner). Where the file system cannot lock at all, the cache still
  works and says once that it must not be shared.
* **Damage.** Holding the lock, a file that HDF5 cannot open is a run's leftover, killed while writing: it is
  moved aside to ``<name>.h5.damaged-<pid>`` (nothing deleted) and a new cache started, saying so. An entry is
  marked complete (attribute ``n``) only after all its arrays are written; an incomplete or unreadable entry is
  dropped and recomputed, saying so once.
* **A full disk.** Before each write, the free space is checked against the entry's size plus a margin; when it is
  short (or a write fails), the cache stops writing, says so once, and the run goes on with the memory cache.
* **Bad paths.** A cache folder that is a file, or that cannot be created, is one line naming it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import socket
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import numpy as np

from zoomrl.core.io import DiskFullError, ensure_free_space, is_disk_full

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

FORMAT = "3"
"""Layout version stored in the file; a file of another version is discarded and rebuilt. Version 3: entries are
keyed by the image file's content (:attr:`zoomrl.data.voc.VocImage.key`); version 2 keyed them by
``<folder name>/<id>``, which served one data set's features to another with the same folder name and kept an
image's features after the image was replaced, so those files are discarded."""


class CacheBusyError(OSError):
    """Another run holds the feature cache. ``str()`` is one line naming the file and the owner."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EWOULDBLOCK, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def lock_path(path: Path) -> Path:
    """The lock file of cache ``path``."""
    return path.with_name(path.name + ".lock")


class _FileLock:
    """An exclusive, non-blocking ``flock`` on ``path`` held until :meth:`release` (or the process's death)."""

    def __init__(self, path: Path, owner_of: Path, log: Callable[[str], None]) -> None:
        self.path = path
        self.fd: int | None = None
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OSError(
                exc.errno,
                f"feature cache {owner_of}: cannot create its lock file {path} "
                f"({exc.strerror}); expected a writable folder",
            ) from None
        if fcntl is None:  # pragma: no cover
            log(f"feature cache {owner_of}: this system cannot lock files; do not share the cache between runs")
            os.close(fd)
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise CacheBusyError(
                f"feature cache {owner_of} is in use by another run ({holder}); wait for it to end or pass "
                "another --feature-cache"
            ) from None
        except OSError as exc:
            os.close(fd)
            log(
                f"feature cache {owner_of}: the file system cannot lock {path.name} ({exc.strerror}); "
                "do not share this cache between runs"
            )
            return
        self.fd = fd
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())

    def release(self) -> None:
        if self.fd is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text.splitlines()[0] if text else "owner unknown"


class DiskCache:
    """Descriptors (or maps) in one HDF5 file, keyed by a hash of the cache key; see the module doc for its faults.

    The cache trusts its keys: equal keys must mean equal inputs. The feature models key an entry by the image's
    content digest (never its path or folder name), its painted masks and the window.

    The file's attributes hold ``meta`` (variant, weight fingerprint, input size) and the layout version; a file
    built with other values is removed and started again, saying so through ``log``. A second ``DiskCache`` on
    the same file, in this process or another, raises :class:`CacheBusyError` until the first is closed.
    """

    def __init__(self, path: Path, meta: dict[str, str], log: Callable[[str], None] = print) -> None:
        import h5py

        self.path = Path(path)
        self.log = log
        self._h5py = h5py
        self.hits = 0
        self.writes = 0
        self.dropped = 0
        self.writable = True
        self.file = None
        folder = self.path.parent
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"feature cache folder {folder} is a file; expected a folder (created when missing)")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(
                exc.errno,
                f"feature cache folder {folder}: cannot create it ({exc.strerror}); expected a writable folder",
            ) from None
        if self.path.exists() and not self.path.is_file():
            raise ValueError(f"feature cache {self.path} is not a file; expected an HDF5 file or nothing")
        self._lock = _FileLock(lock_path(self.path), self.path, log)
        try:
            self.file = self._open({**meta, "format": FORMAT})
        except BaseException:
            self._lock.release()
            raise

    def _open(self, meta: dict[str, str]):
        h5py = self._h5py
        if self.path.exists():
            if not os.access(self.path, os.R_OK | os.W_OK):
                raise PermissionError(
                    errno.EACCES,
                    f"feature cache {self.path}: not readable and writable by you; "
                    "expected a file you own or another --feature-cache",
                )
            try:
                f = h5py.File(self.path, "a", locking=False)
            except (OSError, RuntimeError, ValueError) as exc:
                # We hold the lock, so no live run writes it: a run killed while writing left it damaged.
                aside = self.path.with_name(self.path.name + f".damaged-{os.getpid()}")
                os.replace(self.path, aside)
                reason = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
                self.log(f"feature cache {self.path}: damaged ({reason}); moved to {aside.name}, starting a new one")
            else:
                stored = {k: str(f.attrs.get(k, "")) for k in meta}
                if stored == meta:
                    return f
                f.close()
                self.log(f"feature cache {self.path}: built with {stored}, now {meta}; discarding it")
                self.path.unlink()
        try:
            ensure_free_space(self.path, 0)
            f = h5py.File(self.path, "w", locking=False)
            for k, v in meta.items():
                f.attrs[k] = v
            f.flush()
        except (OSError, RuntimeError) as exc:
            self.path.unlink(missing_ok=True)
            if isinstance(exc, DiskFullError):
                raise
            if is_disk_full(exc):
                raise DiskFullError(self.path) from None
            raise OSError(f"feature cache {self.path}: cannot create it ({str(exc).splitlines()[0][:100]})") from None
        return f

    @staticmethod
    def _name(key: Hashable) -> str:
        return hashlib.sha1(repr(key).encode()).hexdigest()

    def _drop(self, name: str, why: str) -> None:
        if not self.dropped:
            self.log(
                f"feature cache {self.path}: entry {name[:12]} {why}; dropping and recomputing it "
                "(said once; the count is in the stats)"
            )
        self.dropped += 1
        try:
            del self.file[name]
        except Exception:  # noqa: BLE001 - a damaged entry may not even delete; it is then skipped each time
            pass

    def get(self, key: Hashable) -> list[np.ndarray] | None:
        name = self._name(key)
        try:
            if name not in self.file:
                return None
            group = self.file[name]
            n = group.attrs.get("n")
            if n is None or int(n) != len(group):
                self._drop(name, "is incomplete (a run was stopped while writing it)")
                return None
            arrays = [np.asarray(group[str(i)]) for i in range(int(n))]
        except (OSError, KeyError, ValueError, RuntimeError) as exc:
            self._drop(name, f"is unreadable ({str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__})")
            return None
        self.hits += 1
        return arrays

    def put(self, key: Hashable, arrays: Sequence[np.ndarray]) -> None:
        """Store ``arrays`` under ``key`` unless there already, the disk is full or writing failed before."""
        if not self.writable:
            return
        name = self._name(key)
        try:
            if name in self.file:
                return
            ensure_free_space(self.path, sum(int(np.asarray(a).nbytes) for a in arrays))
            group = self.file.create_group(name)
            for i, a in enumerate(arrays):
                group.create_dataset(str(i), data=a)
            group.attrs["n"] = len(arrays)
        except (OSError, RuntimeError, ValueError) as exc:
            self.writable = False
            what = (
                "no space left on the device"
                if is_disk_full(exc)
                else (f"writing failed ({str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__})")
            )
            self.log(
                f"feature cache {self.path}: {what}; no longer writing to it, this run keeps descriptors in memory only"
            )
            try:
                if name in self.file:
                    del self.file[name]
            except Exception:  # noqa: BLE001
                pass
            return
        self.writes += 1

    def flush(self) -> None:
        if self.file is not None:
            try:
                self.file.flush()
            except (OSError, RuntimeError) as exc:
                if self.writable:
                    self.writable = False
                    self.log(
                        f"feature cache {self.path}: flushing failed ({str(exc).splitlines()[0][:80]}); "
                        "no longer writing to it"
                    )

    def close(self) -> None:
        """Close the file and release the lock; closing twice is harmless."""
        try:
            if self.file is not None:
                self.file.close()
        except Exception:  # noqa: BLE001 - closing twice or at interpreter exit
            pass
        finally:
            self.file = None
            self._lock.release()

    def __enter__(self) -> DiskCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
