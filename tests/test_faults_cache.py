"""Faults of the feature cache and the disk (issue 9): a truncated cache, a cache path that is a file, two runs
sharing one cache with HDF5 locking off, incomplete entries, a full disk while writing the cache, JSON or weights."""

import errno
import json
import os
import subprocess
import sys
from collections import namedtuple

import numpy as np
import pytest

from conftest import REPO, fake_backbone
from zoomrl.core.io import DiskFullError, atomic_path, checked_atomic_path, ensure_free_space, is_disk_full, write_json
from zoomrl.experiments.common import run_guarded
from zoomrl.vision.cache import CacheBusyError, DiskCache, lock_path
from zoomrl.vision.features import ImageZooms, Request

META = {"variant": "v", "weights": "w", "input_size": "224"}
Usage = namedtuple("Usage", "total used free")
MiB = 2**20


@pytest.fixture(autouse=True)
def hdf5_locking_off(monkeypatch):
    """As on many network file systems: the cache's own lock must do the work."""
    monkeypatch.setenv("HDF5_USE_FILE_LOCKING", "FALSE")


def _fill(path, n=20):
    with DiskCache(path, META, log=lambda m: None) as cache:
        for i in range(n):
            cache.put(("k", i), [np.full(1000, i, np.float32)])


def test_truncated_cache_is_moved_aside_not_reported_locked(tmp_path):
    path = tmp_path / "c.h5"
    _fill(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    lines = []
    with DiskCache(path, META, log=lines.append) as cache:
        assert cache.get(("k", 3)) is None
        cache.put(("k", 3), [np.arange(4.0)])
        np.testing.assert_array_equal(cache.get(("k", 3))[0], [0, 1, 2, 3])
    [aside] = tmp_path.glob("c.h5.damaged-*")
    assert aside.read_bytes() == data[: len(data) // 2]  # nothing lost
    assert len(lines) == 1 and "damaged (" in lines[0] and f"moved to {aside.name}" in lines[0]
    assert "in use" not in lines[0] and "locked" not in lines[0]  # the old check matched "sblock->"


def test_cache_reopens_whole_after_close(tmp_path):
    path = tmp_path / "c.h5"
    _fill(path, n=3)
    with DiskCache(path, META) as cache:
        np.testing.assert_array_equal(cache.get(("k", 2))[0], np.full(1000, 2, np.float32))
        assert cache.hits == 1


def test_feature_cache_pointing_at_a_file(tmp_path):
    target = tmp_path / "cache.h5"
    target.write_bytes(b"x")
    with pytest.raises(ValueError, match=rf"^feature cache folder {target} is a file; expected a folder"):
        ImageZooms(fake_backbone, "w1", cache_dir=target)
    with pytest.raises(OSError, match=r"feature cache folder .*cache.h5/sub: cannot create it"):
        ImageZooms(fake_backbone, "w1", cache_dir=target / "sub")
    (tmp_path / "dir.h5").mkdir()
    with pytest.raises(ValueError, match=r"dir.h5 is not a file; expected an HDF5 file"):
        DiskCache(tmp_path / "dir.h5", META)
    assert target.read_bytes() == b"x"


def test_second_cache_on_one_file_is_refused_until_the_first_closes(tmp_path):
    path = tmp_path / "c.h5"
    first = DiskCache(path, META)
    first.put("a", [np.ones(3)])
    with pytest.raises(
        CacheBusyError,
        match=rf"^feature cache {path} is in use by another run "
        rf"\(pid {os.getpid()} on .*\); wait for it to end or pass another",
    ):
        DiskCache(path, META)
    assert first.get("a") is not None  # the refused run touched nothing
    first.close()
    first.close()  # harmless twice
    with DiskCache(path, META) as second:
        np.testing.assert_array_equal(second.get("a")[0], np.ones(3))


def test_cache_shared_with_another_process(tmp_path):
    """The one subprocess test: a run holding the cache in another process, HDF5 locking off in both."""
    path = tmp_path / "c.h5"
    code = (
        "import sys, numpy as np; from zoomrl.vision.cache import DiskCache\n"
        f"c = DiskCache({str(path)!r}, {META!r}); c.put('other', [np.arange(5.0)]); c.flush()\n"
        "print('ready', flush=True); sys.stdin.read(); c.close()\n"
    )
    env = {**os.environ, "HDF5_USE_FILE_LOCKING": "FALSE", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(CacheBusyError, match=rf"in use by another run \(pid {proc.pid} on "):
            DiskCache(path, META)
        code_run = run_guarded(lambda: DiskCache(path, META))
        assert code_run == 2
    finally:
        proc.communicate("", timeout=30)
    assert proc.returncode == 0
    assert lock_path(path).is_file()  # left behind by design; the kernel released it
    with DiskCache(path, META) as cache:
        np.testing.assert_array_equal(cache.get("other")[0], np.arange(5.0))


def test_incomplete_entry_dropped_and_recomputed(tmp_path):
    path = tmp_path / "c.h5"
    lines = []
    with DiskCache(path, META, log=lines.append) as cache:
        cache.put("whole", [np.ones(2), np.zeros(3)])
        # what a run stopped between create_group and its last dataset leaves: no completion mark
        group = cache.file.create_group(cache._name("half"))
        group.create_dataset("0", data=np.ones(2))
    with DiskCache(path, META, log=lines.append) as cache:
        assert cache.get("half") is None and cache.dropped == 1
        assert cache.get("half") is None and cache.dropped == 1  # deleted, so now a plain miss
        cache.put("half", [np.full(2, 5.0)])
        np.testing.assert_array_equal(cache.get("half")[0], [5.0, 5.0])
        assert [a.tolist() for a in cache.get("whole")] == [[1.0, 1.0], [0.0, 0.0, 0.0]]
    assert len(lines) == 1 and "is incomplete" in lines[0]


def test_old_layout_discarded(tmp_path):
    import h5py

    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        f.attrs.update(META)
        f.create_group("x").create_dataset("0", data=np.ones(2))
    lines = []
    DiskCache(path, META, log=lines.append).close()
    assert "'format': ''" in lines[0] and "discarding it" in lines[0]


def test_full_disk_stops_cache_writes_not_the_run(tmp_path, monkeypatch):
    lines = []
    model = ImageZooms(fake_backbone, "w1", cache_dir=tmp_path, log=lines.append)
    img = np.random.default_rng(0).integers(0, 255, size=(48, 64, 3)).astype(np.uint8)
    first = model.describe([Request("a", (), img, (0, 0, 32, 32))])
    assert model.disk.writes == 1
    real = __import__("shutil").disk_usage
    monkeypatch.setattr("shutil.disk_usage", lambda p: Usage(100 * MiB, 99 * MiB, MiB))
    second = model.describe([Request("a", (), img, (0, 0, 64, 48)), Request("a", (), img, (8, 8, 40, 40))])
    assert model.disk.writes == 1 and not model.disk.writable
    assert len(lines) == 1 and "no space left on the device; no longer writing to it" in lines[0]
    np.testing.assert_array_equal(model.describe([Request("a", (), img, (0, 0, 64, 48))]), second[:1])
    monkeypatch.setattr("shutil.disk_usage", real)
    model.close()
    other = ImageZooms(fake_backbone, "w1", cache_dir=tmp_path)
    np.testing.assert_array_equal(other.describe([Request("a", (), img, (0, 0, 32, 32))]), first)
    assert other.disk.hits == 1 and other.backbone_images == 0
    other.close()


def test_enospc_inside_hdf5_write_leaves_no_partial_entry(tmp_path, monkeypatch):
    import h5py

    lines = []
    cache = DiskCache(tmp_path / "c.h5", META, log=lines.append)

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(h5py.Group, "create_dataset", full)
    cache.put("k", [np.ones(3)])
    assert not cache.writable and cache._name("k") not in cache.file and cache.get("k") is None
    assert "no space left" in lines[0]
    cache.close()


def test_atomic_write_on_full_disk_keeps_the_old_file(tmp_path, capsys):
    target = tmp_path / "latest.json"
    write_json(target, {"epoch": 1})

    def write_half(tmp):
        tmp.write_text('{"epo')
        raise OSError(errno.ENOSPC, "No space left on device")

    def save():
        with atomic_path(target) as tmp:
            write_half(tmp)

    with pytest.raises(DiskFullError) as info:
        save()
    assert str(info.value) == (
        f"{target}: no space left on device; the previous file, if any, is kept: free some space and run again"
    )
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
    assert json.loads(target.read_text()) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json"]  # no temporary behind
    assert run_guarded(save) == 2
    err = capsys.readouterr().err
    assert err == f"error: {info.value}\n"


def test_hdf5_style_message_recognised():
    assert is_disk_full(
        OSError(
            "Can't write data (file write failed: time = x, filename = 'a.h5', file descriptor"
            " = 5, errno = 28, error message = 'No space left on device', buf = 0x1)"
        )
    )
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))


def test_free_space_check(tmp_path, monkeypatch):
    monkeypatch.setattr("shutil.disk_usage", lambda p: Usage(100 * MiB, 90 * MiB, 10 * MiB))
    ensure_free_space(tmp_path / "new" / "w.h5", 10 * MiB, margin=0)  # exactly enough; folder need not exist
    with pytest.raises(DiskFullError, match=r"w.h5: no space left on device \(needs about 26.0 MiB, 10.0 MiB free\)"):
        ensure_free_space(tmp_path / "w.h5", 10 * MiB)  # + the 16 MiB margin
    with pytest.raises(ValueError, match="expected_bytes must be >= 0"):
        ensure_free_space(tmp_path / "w.h5", -1)
    # atomic_path refuses outright below 1 MiB free, before any writer runs
    monkeypatch.setattr("shutil.disk_usage", lambda p: Usage(100 * MiB, 100 * MiB, MiB - 1))
    called = []
    with pytest.raises(DiskFullError, match="x.json: no space left"):
        with atomic_path(tmp_path / "x.json") as tmp:
            called.append(tmp)
    assert called == [] and list(tmp_path.iterdir()) == []


def test_keras_weights_write_checked_before_hdf5_starts(tmp_path, monkeypatch):
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    path = tmp_path / "epoch_1.weights.h5"
    nbytes = sum(int(np.prod(w.shape)) * 4 for w in model.weights)
    with checked_atomic_path(path, nbytes, suffix=".weights.h5") as tmp:
        model.save_weights(str(tmp))
    before = path.read_bytes()
    model.layers[0].kernel.assign(np.ones((3, 4), np.float32))
    monkeypatch.setattr("shutil.disk_usage", lambda p: Usage(100 * MiB, 90 * MiB, 10 * MiB))
    with pytest.raises(DiskFullError, match=r"epoch_1.weights.h5: no space left on device \(needs about"):
        with checked_atomic_path(path, nbytes, suffix=".weights.h5") as tmp:
            model.save_weights(str(tmp))
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [path.name]
