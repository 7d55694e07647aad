"""``--features clip``: the CLIP image encoder built through keras-hub, on a small randomly initialised configuration
(nothing can be downloaded here). Skipped where keras-hub is absent."""

import numpy as np
import pytest

pytest.importorskip("keras_hub")

from zoomrl.vision.clip import (  # noqa: E402 - after the skip
    CLIP_MEAN,
    CLIP_STD,
    build_clip_feature_model,
    normalise,
    random_clip_backbone,
)
from zoomrl.vision.features import Request  # noqa: E402

SMALL = {
    "patch_size": 8,
    "hidden_dim": 16,
    "num_layers": 1,
    "num_heads": 2,
    "intermediate_dim": 32,
    "image_size": 32,
    "projection_dim": 8,
}


def _image():
    image = np.zeros((40, 60, 3), np.uint8)
    image[:20, :30] = (255, 0, 0)
    image[20:, 30:] = (0, 128, 255)
    return image


def test_normalise_is_clips_mean_and_std():
    x = normalise(np.array([[[255, 0, 51]]], np.uint8))[0, 0]
    np.testing.assert_allclose(x, (np.array([1.0, 0.0, 0.2]) - CLIP_MEAN) / CLIP_STD, rtol=1e-6)


def test_random_small_configuration_says_it_is_not_pretrained():
    logs = []
    model = build_clip_feature_model("clip_vit_base_patch32", random_weights=True, architecture=SMALL, log=logs.append)
    assert len(logs) == 1 and "NOT pretrained" in logs[0]
    assert model.descriptor_size == 8 and model.side == 32 and model.weights_name.startswith("random")
    image = _image()
    d = model.describe(
        [
            Request("i", (), image, (0, 0, 30, 20)),
            Request("i", (), image, (30, 20, 60, 40)),
            Request("i", (), image, (0, 0, 30, 20)),
        ]
    )
    assert d.shape == (3, 8) and np.isfinite(d).all()
    np.testing.assert_array_equal(d[0], d[2])  # the same box: one embedding (and a cache hit)
    assert not np.allclose(d[0], d[1])  # red and blue boxes differ
    assert model.backbone_images == 2
    with pytest.raises(ValueError, match="no known architecture"):
        build_clip_feature_model("some_other_preset", random_weights=True, log=logs.append)


def test_preset_loading_code_on_a_local_preset(tmp_path):
    """The pretrained path (``CLIPBackbone.from_preset``) on a preset folder saved here from a small random model:
    the loaded encoder gives the saved model's embeddings of the hand-normalised crop, and no warning."""
    import keras
    from PIL import Image

    backbone = random_clip_backbone(SMALL)
    backbone.save_to_preset(str(tmp_path / "preset"))
    logs = []
    model = build_clip_feature_model(str(tmp_path / "preset"), log=logs.append)
    assert logs == [] and model.weights_name == f"keras-hub {tmp_path / 'preset'}"
    image = _image()
    d = model.describe([Request("i", (), image, (10, 5, 50, 35))])[0]
    crop = np.asarray(Image.fromarray(image[5:35, 10:50]).resize((32, 32), Image.BILINEAR), dtype=np.float32)
    x = ((crop / 255.0 - CLIP_MEAN) / CLIP_STD)[None].astype(np.float32)
    expected = keras.ops.convert_to_numpy(backbone.get_vision_embeddings(x))[0]
    np.testing.assert_allclose(d, expected, rtol=1e-4, atol=1e-5)


def test_a_missing_preset_is_one_line(tmp_path):
    from zoomrl.vision.backbone import WeightsError

    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError) as err:
        build_clip_feature_model(str(tmp_path / "empty"), log=lambda _: None)
    assert "could not be loaded" in str(err.value) and "\n" not in str(err.value)


def test_active_training_with_clip_features(tmp_path):
    """The active family builds the CLIP features from its configuration (``clip_preset``) and trains on them."""
    from conftest import square_task, write_voc
    from zoomrl.experiments.active.config import make_config
    from zoomrl.experiments.active.train import train

    random_clip_backbone(SMALL).save_to_preset(str(tmp_path / "preset"))
    write_voc(tmp_path / "data", square_task(2, 0))
    cfg = make_config("tiny", class_object="box", features="clip", clip_preset=str(tmp_path / "preset"), epochs=1)
    out = train(cfg, [tmp_path / "data"], "trainval", tmp_path / "m", log=lambda _: None, show_progress=False)
    from pathlib import Path

    from zoomrl.agents.dqn.checkpoint import read_weights_meta

    assert read_weights_meta(Path(out["weights"]))["state_size"] == 8 + 9 * 10


def test_weights_none_builds_the_presets_architecture_at_random(monkeypatch):
    """``--weights none`` reaches the random build through the active family's configuration, with its warning."""
    from zoomrl.experiments.active.config import make_config
    from zoomrl.vision import clip

    monkeypatch.setitem(clip.ARCHITECTURES, "small_test", SMALL)
    logs = []
    model = make_config("tiny", features="clip", weights="none", clip_preset="small_test").feature_model(logs.append)
    assert model.descriptor_size == 8 and any("NOT pretrained" in line for line in logs)
    assert model.weights_name == "random (small_test architecture)"
