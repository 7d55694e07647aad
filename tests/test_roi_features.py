"""RoIAlign region features (``--features roi``): the NumPy RoIAlign against a plain loop reference and hand values
on small maps, and one backbone pass per (image, mask state) through the feature model and the active env."""

import math

import numpy as np
import pytest

from zoomrl.vision.features import Request
from zoomrl.vision.roi import RoiAlignFeatures, roi_align


def reference_roi_align(fmap, box, stride, grid, sampling):
    """Plain loops: each bin the mean of sampling x sampling bilinear samples; cell k centred at k + 0.5."""
    h, w, c = fmap.shape
    x1, y1, x2, y2 = (v / stride for v in box)
    bh, bw = (y2 - y1) / grid, (x2 - x1) / grid
    out = np.zeros((grid, grid, c))

    def sample(y, x):
        y = min(max(y, 0.0), h - 1.0)
        x = min(max(x, 0.0), w - 1.0)
        y0, x0 = math.floor(y), math.floor(x)
        y1_, x1_ = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
        ly, lx = y - y0, x - x0
        return (
            (1 - ly) * (1 - lx) * fmap[y0, x0]
            + (1 - ly) * lx * fmap[y0, x1_]
            + ly * (1 - lx) * fmap[y1_, x0]
            + ly * lx * fmap[y1_, x1_]
        )

    for gy in range(grid):
        for gx in range(grid):
            for sy in range(sampling):
                for sx in range(sampling):
                    y = y1 + (gy + (sy + 0.5) / sampling) * bh - 0.5
                    x = x1 + (gx + (sx + 0.5) / sampling) * bw - 0.5
                    out[gy, gx] += sample(y, x) / sampling**2
    return out


@pytest.mark.parametrize(
    "box",
    [(0, 0, 80, 64), (16, 16, 32, 32), (70, 50, 80, 64), (3.5, 7.25, 41.0, 22.5), (20, 20, 24, 22), (0, 40, 80, 64)],
)
@pytest.mark.parametrize("grid,sampling", [(7, 2), (3, 1), (2, 3)])
def test_roi_align_matches_the_loop_reference(box, grid, sampling):
    fmap = np.random.default_rng(0).normal(size=(4, 5, 3)).astype(np.float32)  # an 80 x 64 image at stride 16
    np.testing.assert_allclose(
        roi_align(fmap, box, 16.0, grid, sampling),
        reference_roi_align(fmap, box, 16.0, grid, sampling),
        rtol=1e-5,
        atol=1e-5,
    )


def test_roi_align_hand_values():
    # one channel, f[i, j] = 10 i + j on a 3 x 4 map of stride 16
    fmap = (10.0 * np.arange(3)[:, None] + np.arange(4)[None, :])[:, :, None].astype(np.float32)
    # a box covering exactly cell (1, 2): one sample at its centre is the cell's value
    assert roi_align(fmap, (32, 16, 48, 32), 16.0, grid=1, sampling=1)[0, 0, 0] == pytest.approx(12.0)
    # two bins per axis: samples at map coordinates 2.25 / 2.75 (x) and 1.25 / 1.75 (y), i.e. indices +-0.25
    # around the centre; the map is linear inside, so each bin is the map at its sample: 10 (1 -+ 0.25) + 2 -+ 0.25
    np.testing.assert_allclose(
        roi_align(fmap, (32, 16, 48, 32), 16.0, grid=2, sampling=1)[..., 0], [[9.25, 9.75], [14.25, 14.75]], atol=1e-5
    )
    # a box at the border (cell (0, 0)): the samples at index -0.25 take the border cell; those at +0.25 interpolate
    np.testing.assert_allclose(
        roi_align(fmap, (0, 0, 16, 16), 16.0, grid=2, sampling=1)[..., 0], [[0.0, 0.25], [2.5, 2.75]], atol=1e-5
    )
    # a sub-cell box: x 20..24, y 36..40 px -> map 1.25..1.5 and 2.25..2.5; one sample at index (y 1.875,
    # x 0.875), between four cell centres: 10 * 1.875 + 0.875
    assert roi_align(fmap, (20, 36, 24, 40), 16.0, grid=1, sampling=1)[0, 0, 0] == pytest.approx(19.625)
    # a box of a quarter cell at the bottom-right corner: clamped to the corner cell entirely
    assert roi_align(fmap, (60, 44, 64, 48), 16.0, grid=1, sampling=1)[0, 0, 0] == pytest.approx(23.0)


def test_roi_align_rejects_bad_input():
    with pytest.raises(ValueError, match="x2 > x1"):
        roi_align(np.zeros((2, 2, 1)), (10, 0, 10, 5), 16.0)
    with pytest.raises(ValueError, match=r"\(h, w, C\)"):
        roi_align(np.zeros((2, 2)), (0, 0, 5, 5), 16.0)


def mean_map(batch):
    """A stand-in backbone: the preprocessed image average-pooled by 16 (3 channels), like a stride-16 conv map."""
    n, h, w, _ = batch.shape
    hh, ww = h // 16, w // 16
    return batch[:, : hh * 16, : ww * 16].reshape(n, hh, 16, ww, 16, 3).mean(axis=(2, 4))


def _model(**kw):
    return RoiAlignFeatures(mean_map, "test", channels=3, cache_mb=16, log=lambda _: None, **kw)


def test_one_backbone_pass_per_image_and_mask_state():
    from zoomrl.envs.active import paint_cross
    from zoomrl.vision.backbone import preprocess

    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(64, 96, 3), dtype=np.uint8)
    model = _model()
    boxes = [(0, 0, 96, 64), (10, 5, 50, 40), (48, 16, 96, 64)]
    d = model.describe([Request("im", (), image, b) for b in boxes])
    assert model.backbone_calls == 1 and d.shape == (3, 7 * 7 * 3)
    fmap = mean_map(preprocess(image[None]))[0]
    for row, b in zip(d, boxes):  # each box is RoIAlign of the one map
        np.testing.assert_allclose(row, roi_align(fmap, b, 16.0).reshape(-1), rtol=1e-5, atol=1e-4)
    model.describe([Request("im", (), image, (5, 5, 30, 30))])
    assert model.backbone_calls == 1  # the same image and masks: the cached map
    masked = image.copy()
    key = (paint_cross(masked, (16, 16, 80, 48)),)
    after = model.describe([Request("im", key, masked, (16, 16, 80, 48))])
    assert model.backbone_calls == 2  # the cross repaints the image: the map is recomputed once
    assert not np.allclose(after[0], roi_align(fmap, (16, 16, 80, 48), 16.0).reshape(-1), atol=1e-3)
    model.describe([Request("im", key, masked, b) for b in boxes])
    assert model.backbone_calls == 2


def test_large_images_are_resized_and_boxes_scaled():
    from PIL import Image

    from zoomrl.vision.backbone import preprocess

    image = np.random.default_rng(2).integers(0, 256, size=(100, 200, 3), dtype=np.uint8)
    model = _model(max_side=100)
    d = model.describe([Request("big", (), image, (40, 20, 160, 80))])[0]
    small = np.asarray(Image.fromarray(image).resize((100, 50), Image.BILINEAR), dtype=np.uint8)
    fmap = mean_map(preprocess(small[None]))[0]
    np.testing.assert_allclose(d, roi_align(fmap, (20, 10, 80, 40), 16.0).reshape(-1), rtol=1e-5, atol=1e-4)


def test_active_env_recomputes_maps_once_per_trigger():
    from zoomrl.envs.active import TRIGGER, ActiveEnv

    image = np.random.default_rng(3).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    model = _model()
    env = ActiveEnv(
        image,
        np.array([[0, 0, 64, 64], [0, 0, 32, 32]]),
        features=model,
        training=False,
        max_steps=5,
        max_total_steps=30,
    )
    env.reset(seed=0)
    triggers = 0
    for step in range(30):
        action = TRIGGER if step % 3 == 2 else step % 4
        triggers += action == TRIGGER
        _, _, term, trunc, _ = env.step(action)
        if env.image_done:
            break
        if term or trunc:
            env.reset()
    assert triggers == 10 and env.image_done
    # the first map, then one after each trigger but the last (the image ends there: nothing more to describe)
    assert model.backbone_calls == triggers


def test_disk_cache_is_reused_and_kept_apart_per_resolution(tmp_path):
    image = np.random.default_rng(4).integers(0, 256, size=(64, 96, 3), dtype=np.uint8)
    request = [Request("im", (), image, (8, 8, 90, 60))]
    first = _model(cache_dir=tmp_path)
    d = first.describe(request)
    first.close()
    again = _model(cache_dir=tmp_path)
    np.testing.assert_array_equal(again.describe(request), d)
    assert again.backbone_calls == 0 and again.disk.hits == 1  # the map came from the file
    again.close()
    other = _model(cache_dir=tmp_path, max_side=48)
    other.describe(request)
    assert other.backbone_calls == 1  # another resolution: another file
    other.close()
