"""``glimpse_input: pool4`` (issue 19): RAM's glimpses and the whole-image baselines read VGG-16's ``block4_pool``
maps of the photos. Checked: each epoch's maps are those of the pixels it shows (flipped photos' maps where a photo
is flipped, the flips and order of the pixel run), the test split's maps, the configuration's errors, and train +
test end to end on a real (randomly initialised) VGG-16, the pictures drawn in pixels.

Mutations tried by hand, and the test that caught each: the plain maps where a photo is flipped (the flipped
photos' maps unused): ``test_each_epoch_carries_the_maps_of_the_pixels_it_shows``; the baselines fed the pixels
(``split.images`` in ``eval/ram.py``): ``test_train_and_test_on_pool4_maps_end_to_end``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import fake_backbone, square_task, write_voc
from zoomrl.core.config import ConfigError
from zoomrl.data.splits import TaskData
from zoomrl.experiments.glimpse.config import make_config
from zoomrl.experiments.glimpse.features import BackboneTaskData, cell_pixels, task_data
from zoomrl.vision.backbone import preprocess


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A VOC root with 6 trainval and 3 test photos of the square task (64 x 64)."""
    root = tmp_path_factory.mktemp("squares")
    write_voc(root, square_task(6, 0))
    test = [(f"t{name}", img, objs) for name, img, objs in square_task(3, 1)]
    write_voc(root, test, image_set="test")
    return root


def pool4_config(root, **over):
    args = dict(dataset=str(root), voc_class="box", image_size=64, glimpse_input="pool4", weights="none")
    return make_config("tiny", "regress", **{**args, **over})


def by_hand(images, scale=0.05):
    return scale * fake_backbone(preprocess(images * 255.0))[0]


def test_each_epoch_carries_the_maps_of_the_pixels_it_shows(photos):
    cfg = pool4_config(photos, augment_flip=True)
    data = task_data(cfg, log=lambda m: None)
    assert isinstance(data, BackboneTaskData) and data.image_shape() == (4, 4, 512) and cell_pixels(cfg) == 16
    data._backbone = fake_backbone  # position-sensitive, so a flipped photo's map differs from the photo's
    pixels = TaskData(cfg.replace(glimpse_input="pixels"))
    unflipped = TaskData(cfg.replace(glimpse_input="pixels", augment_flip=False))
    flipped_some = False
    for epoch in range(3):
        s, p, u = data.train_epoch(epoch), pixels.train_epoch(epoch), unflipped.train_epoch(epoch)
        for a, b in ((s.images, p.images), (s.points, p.points), (s.targets, p.targets), (s.boxes, p.boxes)):
            np.testing.assert_allclose(a, b, atol=1e-6)  # the pixel run's order and flips
        np.testing.assert_allclose(s.features, by_hand(s.images), rtol=1e-5, atol=1e-5)
        assert s.inputs is s.features
        flipped_some |= not np.array_equal(s.images, u.images)
    assert flipped_some
    t = data.test()
    assert len(t) == 3 and t.features.shape == (3, 4, 4, 512)
    np.testing.assert_allclose(t.features, by_hand(t.images), rtol=1e-5, atol=1e-5)
    assert type(task_data(cfg.replace(glimpse_input="pixels"))) is TaskData
    unscaled = BackboneTaskData(cfg.replace(feature_scale=1.0), log=lambda m: None)
    unscaled._backbone = fake_backbone
    np.testing.assert_allclose(unscaled.test().features, by_hand(t.images, 1.0), rtol=1e-5, atol=1e-5)


def test_configuration_errors(photos):
    with pytest.raises(ConfigError, match="needs a VOC folder"):
        make_config("tiny", "regress", glimpse_input="pool4")
    with pytest.raises(ConfigError, match="multiple of 16"):
        pool4_config(photos, image_size=40)
    with pytest.raises(ConfigError, match="no augment_shift"):
        pool4_config(photos, augment_shift=4)
    with pytest.raises(ConfigError, match="glimpse_input"):
        pool4_config(photos, glimpse_input="pool5")
    with pytest.raises(ConfigError, match="feature_scale"):
        pool4_config(photos, feature_scale=0.0)


def test_train_and_test_on_pool4_maps_end_to_end(photos, tmp_path, monkeypatch):
    from zoomrl.experiments.glimpse.test import test
    from zoomrl.experiments.glimpse.train import train
    from zoomrl.vision import backbone

    # weights none: each build draws new random weights, so training, testing and the check share one build
    built = []
    real = backbone.load_backbone
    monkeypatch.setattr(
        backbone, "load_backbone", lambda w, log=print: built[0] if built else built.append(real(w, log)) or built[0]
    )

    cfg = pool4_config(photos, glimpse_size=1, scales=2, models="ram,cnn", epochs=1, baseline_epochs=1, batch_size=3)
    lines = []
    train(cfg, tmp_path / "m", quiet=True, log=lines.append)
    assert any("RANDOMLY initialised" in line for line in lines)  # weights none: said, never silent
    res = test(cfg, tmp_path / "m", tmp_path / "r", draw=True, quiet=True, log=lines.append)
    saved = json.loads((tmp_path / "r" / "results.json").read_text())
    assert saved["test_size"] == 3 and set(saved["models"]) == {"ram", "cnn", "centre"}
    # the CNN's prediction recomputed from the maps (by the same network), scored in pixels
    from zoomrl.agents.ram.agent import build_agent
    from zoomrl.data.landmarks import landmark_scores

    data = task_data(cfg, log=lambda m: None)
    split = data.test()
    assert len(built) == 1 and data._backbone is built[0]
    cnn = build_agent("cnn", cfg, data.image_shape(), 2, "regress", cfg.seed)
    latest = json.loads((tmp_path / "m" / "cnn" / "latest.json").read_text())
    cnn.load_weights(tmp_path / "m" / "cnn" / latest["files"]["weights.h5"])
    expected = landmark_scores(cnn.predict(split.features), split.points, split.norms, 64)
    assert res["models"]["cnn"]["mean_distance"] == pytest.approx(expected["mean_distance"], rel=1e-5)
    assert len(list((tmp_path / "r" / "paths").glob("*.png"))) == 2
