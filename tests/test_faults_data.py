"""Faults of the images (issue 9): undecodable images with a <size>, tiny images in Pool45 Crops, images over
Pillow's decompression-bomb limit, nonsense --max-images. Each ends in one line naming the file or value, or is
handled correctly."""

import numpy as np
import pytest
from PIL import Image

from conftest import write_voc
from zoomrl.data.images import load_images
from zoomrl.data.voc import (
    DataError,
    LoadReport,
    allow_large_images,
    load_dataset,
    load_rgb,
    parse_annotation,
    verify_image,
)
from zoomrl.experiments.common import run_guarded


def _items(n, size=(24, 32)):
    rng = np.random.default_rng(3)
    return [
        (f"im{i}", rng.integers(0, 255, size=size + (3,)).astype(np.uint8), [("cat", (2, 2, 20, 16), False, False)])
        for i in range(n)
    ]


@pytest.fixture
def voc(tmp_path):
    """Four images with a <size> in their XML; im1 is truncated to half, im2 is zero bytes."""
    root = write_voc(tmp_path / "voc", _items(4))
    jpg = root / "JPEGImages"
    data = (jpg / "im1.jpg").read_bytes()
    (jpg / "im1.jpg").write_bytes(data[: len(data) // 2])
    (jpg / "im2.jpg").write_bytes(b"")
    return root


def test_undecodable_image_with_size_stops_before_training_naming_it(voc):
    # the annotations parse (they carry <size>), so only decoding finds the damage
    assert len(load_dataset([voc], "trainval")) == 4
    with pytest.raises(DataError, match=r"im1\.jpg: unreadable image \(image file is truncated"):
        load_images([voc], "trainval", "cat", False, None, print)


def test_skip_bad_drops_and_counts_undecodable_images(voc):
    lines = []
    images = load_images([voc], "trainval", "cat", True, None, lines.append, progress=False)
    assert [im.image_id for im in images] == ["im0", "im3"]
    assert lines == [f"data: skipped 2 undecodable image(s) (first: {voc / 'JPEGImages' / 'im1.jpg'})"]
    # every image kept decodes, as training will do it
    assert all(load_rgb(im.image_path).shape == (24, 32, 3) for im in images)


def test_max_images_counts_the_images_kept(voc):
    report = LoadReport()
    images = load_dataset([voc], "trainval", skip_bad=True, max_images=2, report=report, verify_images=True)
    assert [im.image_id for im in images] == ["im0", "im3"] and len(report.bad_images) == 2
    images = load_dataset([voc], "trainval", skip_bad=True, max_images=1, verify_images=True)
    assert [im.image_id for im in images] == ["im0"]


@pytest.mark.parametrize("value", [0, -3, 2.5, "4", True])
def test_nonsense_max_images_refused(voc, value):
    with pytest.raises(ValueError, match=rf"max_images: expected a positive integer or None, received {value!r}"):
        load_images([voc], "trainval", "cat", True, value, print)


def test_bad_image_ends_in_one_line_and_exit_code_2(voc, capsys):
    code = run_guarded(lambda: load_images([voc], "trainval", "cat", False, None, print))
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: {voc / 'JPEGImages' / 'im1.jpg'}: unreadable image (image file is truncated")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_verify_image_reports_the_full_size(tmp_path):
    path = tmp_path / "a.jpg"
    Image.fromarray(np.full((300, 401, 3), 7, np.uint8)).save(path)
    assert verify_image(path) == (401, 300)  # a 1/8 draft decode, but the real size


def test_decompression_bomb_is_one_line_or_allowed(tmp_path, monkeypatch):
    pixels = np.random.default_rng(4).integers(0, 255, size=(20, 20, 3)).astype(np.uint8)
    root = write_voc(
        tmp_path / "voc",
        [
            ("im0", pixels, [("cat", (2, 2, 9, 9), False, False)]),
            ("im1", pixels[:10, :10], [("cat", (2, 2, 9, 9), False, False)]),
        ],
    )
    big = root / "JPEGImages" / "im0.jpg"
    # Pillow refuses images over twice MAX_IMAGE_PIXELS: 20*20 = 400 > 2*150 (im1: 10*10 = 100 is fine)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 150)
    for call in (
        lambda: load_rgb(big),
        lambda: verify_image(big),
        lambda: load_images([root], "trainval", "cat", False, None, print),
    ):
        with pytest.raises(DataError, match=r"im0\.jpg: image too large to decode safely .*--allow-large-images"):
            call()
    # without <size> the annotation parser opens the image: the same one line, not a traceback
    xml = root / "Annotations" / "im0.xml"
    xml.write_text(xml.read_text().replace("<width>20</width>", "<width>0</width>"))
    with pytest.raises(DataError, match="image too large"):
        parse_annotation(xml, root)
    lines = []
    assert [im.image_id for im in load_images([root], "trainval", "cat", True, None, lines.append)] == ["im1"]
    assert lines == [f"data: skipped 1 unreadable file(s) (first: {xml})"]
    allow_large_images()  # what --allow-large-images does; monkeypatch restores the limit afterwards
    assert Image.MAX_IMAGE_PIXELS is None
    assert load_rgb(big).shape == (20, 20, 3)
    assert [im.image_id for im in load_images([root], "trainval", "cat", False, None, print)] == ["im0", "im1"]


def _tiny_vgg():
    """The pooling structure of VGG-16 (four 2x2 max pools to block4_pool, a fifth to block5_pool, 'valid'),
    with a 1x1 convolution to 512 channels: what decides the map sizes, at a fraction of the cost."""
    import keras

    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(512, 1, kernel_initializer=keras.initializers.RandomNormal(seed=1))(inp)
    for _ in range(4):
        x = keras.layers.MaxPooling2D(2)(x)
    return keras.Model(inp, [x, keras.layers.MaxPooling2D(2)(x)])


def test_pool45_crops_on_images_smaller_than_32_pixels():
    from zoomrl.vision.backbone import Backbone
    from zoomrl.vision.features import Pool45Crops, Request, roi_max_pool

    model = _tiny_vgg()
    backbone = Backbone(model, "tiny", "tiny")
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, size=(12, 20, 3)).astype(np.uint8)
    with pytest.raises(ValueError, match="images of 20x12 pixels; expected both sides of at least 32"):
        backbone(np.zeros((1, 12, 20, 3), np.float32))
    feats = Pool45Crops(backbone, "tiny")
    window = (2.0, 1.0, 18.0, 11.0)
    d = feats.describe([Request("small", (), img, window)])
    # reference: the image minus the VGG mean, BGR, padded with zeros to 32x32 at the bottom and right
    x = np.zeros((1, 32, 32, 3), np.float32)
    x[0, :12, :20] = (img.astype(np.float32) - np.array([123.68, 116.779, 103.939], np.float32))[..., ::-1]
    p4, p5 = (np.asarray(m) for m in model(x))
    assert p4.shape == (1, 2, 2, 512) and p5.shape == (1, 1, 1, 512)
    np.testing.assert_allclose(d[0], roi_max_pool(p4[0], window, 16.0).reshape(-1), rtol=1e-5, atol=1e-5)
    # a long thin image: only the short side is padded
    thin = rng.integers(0, 255, size=(8, 70, 3)).astype(np.uint8)
    assert np.isfinite(feats.describe([Request("thin", (), thin, (0, 0, 70, 8))])).all()
    assert feats.backbone_images == 2
