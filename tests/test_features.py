import math

import numpy as np
import pytest

from conftest import fake_backbone
from zoomrl.core.cache import LRUCache
from zoomrl.vision.features import ImageZooms, Pool45Crops, Request, roi_max_pool


def reference_roi_pool(fmap, box, stride, grid=7):
    """Plain loops over bins, cells and channels, written from the definition in roi_max_pool's docstring."""
    h, w, c = fmap.shape
    x1, y1, x2, y2 = [v / stride for v in box]
    out = np.zeros((grid, grid, c), fmap.dtype)
    for i in range(grid):
        ya, yb = y1 + (y2 - y1) * i / grid, y1 + (y2 - y1) * (i + 1) / grid
        r0 = min(max(math.floor(ya), 0), h - 1)
        r1 = min(max(math.ceil(yb), r0 + 1), h)
        for j in range(grid):
            xa, xb = x1 + (x2 - x1) * j / grid, x1 + (x2 - x1) * (j + 1) / grid
            c0 = min(max(math.floor(xa), 0), w - 1)
            c1 = min(max(math.ceil(xb), c0 + 1), w)
            for ch in range(c):
                best = -np.inf
                for r in range(r0, r1):
                    for q in range(c0, c1):
                        best = max(best, fmap[r, q, ch])
                out[i, j, ch] = best
    return out


@pytest.mark.parametrize(
    "box,stride",
    [((0, 0, 320, 224), 32), ((37.5, 12.25, 101.0, 90.0), 16), ((300, 200, 310, 206), 16), ((0, 0, 1000, 1000), 32)],
)
def test_roi_max_pool_matches_reference(box, stride):
    rng = np.random.default_rng(0)
    fmap = rng.normal(size=(14, 20, 5)).astype(np.float32)
    np.testing.assert_array_equal(roi_max_pool(fmap, box, stride), reference_roi_pool(fmap, box, stride))


def test_roi_max_pool_whole_map_hand_case():
    fmap = np.arange(14 * 14, dtype=np.float32).reshape(14, 14, 1)
    out = roi_max_pool(fmap, (0, 0, 14 * 16, 14 * 16), 16)
    # each bin covers exactly 2x2 cells; its max is the bottom-right one
    want = np.array([[(2 * i + 1) * 14 + 2 * j + 1 for j in range(7)] for i in range(7)], np.float32)
    np.testing.assert_array_equal(out[..., 0], want)


def test_lru_cache_bounded_by_bytes():
    cache = LRUCache(max_bytes=3 * 80)
    for k in range(4):
        cache.put(k, np.zeros(10))  # 80 bytes each
    assert len(cache) == 3 and cache.get(0) is None and cache.get(3) is not None
    cache.get(1)
    cache.put(9, np.zeros(10))  # evicts 2, the least recently used
    assert cache.get(2) is None and cache.get(1) is not None


def _image():
    rng = np.random.default_rng(1)
    return rng.integers(0, 255, size=(96, 128, 3)).astype(np.uint8)


def test_image_zooms_cache_and_batches():
    model = ImageZooms(fake_backbone, "fake", batch_size=2)
    img = _image()
    reqs = [Request("a", (), img, w) for w in [(0, 0, 128, 96), (0, 0, 64, 48), (0, 0, 128, 96), (10, 5, 50, 40)]]
    d = model.describe(reqs)
    assert d.shape == (4, 25088)
    np.testing.assert_array_equal(d[0], d[2])
    assert model.backbone_images == 3 and model.backbone_calls == 2  # 3 distinct windows, batches of 2
    again = model.describe(reqs[:2])
    np.testing.assert_array_equal(again, d[:2])
    assert model.backbone_images == 3  # all from the cache
    # another mask state is another descriptor
    model.describe([Request("a", ((0, 0, 5, 5),), img, (0, 0, 128, 96))])
    assert model.backbone_images == 4


def test_image_zooms_crop_resizes_the_window():
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, 100:] = 255
    crop = ImageZooms.crop(img, (100, 0, 200, 100))
    assert crop.shape == (224, 224, 3) and crop.min() == 255


def test_pool45_one_pass_per_mask_state_and_threshold():
    model = Pool45Crops(fake_backbone, "fake")
    img = _image()
    big, small = (0, 0, 128, 96), (0, 0, 64, 48)
    d = model.describe([Request("a", (), img, big), Request("a", (), img, small)])
    assert model.backbone_images == 1
    mean = np.array([123.68, 116.779, 103.939], np.float32)
    p4, p5 = fake_backbone(np.ascontiguousarray((img.astype(np.float32) - mean)[..., ::-1])[None])
    # the longer side 128 < 224: pool4 (stride 16) for both windows
    np.testing.assert_allclose(d[1], roi_max_pool(p4[0], small, 16).reshape(-1), rtol=1e-6)
    model.pool4_threshold = 100
    d2 = model.describe([Request("a", (), img, big)])
    np.testing.assert_allclose(d2[0], roi_max_pool(p5[0], big, 32).reshape(-1), rtol=1e-6)
    assert model.backbone_images == 1
    model.describe([Request("a", ((0, 0, 5, 5),), img, big)])
    assert model.backbone_images == 2  # the masked image gets its own maps


def test_pool45_large_image_is_resized_and_windows_scaled():
    model = Pool45Crops(fake_backbone, "fake", max_side=64)
    img = _image()  # 128 x 96 -> 64 x 48
    model.describe([Request("a", (), img, (0, 0, 128, 96))])
    maps = model.cache.get(("maps", "a", ()))
    assert maps[1].shape[:2] == (1, 2) and float(maps[2][0]) == 0.5


def test_disk_cache_reused_and_invalidated(tmp_path):
    img = _image()
    req = [Request("a", (), img, (0, 0, 64, 48))]
    m1 = ImageZooms(fake_backbone, "w1", cache_dir=tmp_path)
    d1 = m1.describe(req)
    m1.close()
    m2 = ImageZooms(fake_backbone, "w1", cache_dir=tmp_path)
    d2 = m2.describe(req)
    assert m2.backbone_images == 0 and m2.disk.hits == 1
    np.testing.assert_array_equal(d1, d2)
    m2.close()
    messages = []
    m3 = ImageZooms(fake_backbone, "w2", cache_dir=tmp_path, log=messages.append)
    m3.describe(req)
    assert m3.backbone_images == 1  # other weights: other file, recomputed
    m3.close()


def test_disk_cache_moves_a_damaged_file_aside(tmp_path):
    path = tmp_path / "image_zooms_w1.h5"
    path.write_bytes(b"not an hdf5 file")
    messages = []
    model = ImageZooms(fake_backbone, "w1", cache_dir=tmp_path, log=messages.append)
    model.describe([Request("a", (), _image(), (0, 0, 64, 48))])
    model.close()
    [aside] = tmp_path.glob("image_zooms_w1.h5.damaged-*")
    assert aside.read_bytes() == b"not an hdf5 file" and "damaged" in messages[0]
    assert path.stat().st_size > 0
