"""glimpse family, no training: the sensor, the rewards, the landmark data and metric, the configuration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from zoomrl.agents.ram.rewards import (
    binary_reward,
    classification_reward,
    gaussian_reward,
    normalised_distance,
    regression_reward,
)
from zoomrl.agents.ram.sensor import glimpse_numpy, glimpse_sensor
from zoomrl.core.config import ConfigError
from zoomrl.data.landmarks import (
    detection_rates,
    digit_centroids,
    landmark_targets,
    letterbox,
    normalised_distances,
    to_pixels,
    voc_landmarks,
)
from zoomrl.experiments.glimpse.config import GlimpseConfig, make_config


def np_(x):
    from keras import ops

    return np.asarray(ops.convert_to_numpy(x))


def test_sensor_by_hand_centre_and_corner():
    img = np.arange(64, dtype=np.float32).reshape(1, 8, 8, 1)
    img2 = np.concatenate([img, img + 100], axis=-1)  # two channels
    # Centre l = (0, 0): c = (4, 4). Patch 0 (2 wide) starts at floor(4.5) - 1 = 3; patch 1 (4 wide) at 2.
    out = np_(glimpse_sensor(img2, np.zeros((1, 2), np.float32), size=2, scales=2))
    assert out.shape == (1, 2, 2, 4)
    assert np.array_equal(out[0, :, :, 0], [[27, 28], [35, 36]])
    assert np.array_equal(out[0, :, :, 1], [[127, 128], [135, 136]])
    block = img[0, 2:6, 2:6, 0]
    means = [[block[:2, :2].mean(), block[:2, 2:].mean()], [block[2:, :2].mean(), block[2:, 2:].mean()]]
    assert np.allclose(out[0, :, :, 2], means) and np.allclose(out[0, :, :, 3], np.array(means) + 100)
    # Top-left corner l = (-1, -1): c = (0, 0), patch 0 starts at -1: only its bottom-right pixel is inside.
    corner = np_(glimpse_sensor(img, np.array([[-1.0, -1.0]], np.float32), size=2, scales=1))
    assert np.array_equal(corner[0, :, :, 0], [[0, 0], [0, 0]])  # img[0, 0] is 0
    corner = np_(glimpse_sensor(img + 1, np.array([[-1.0, -1.0]], np.float32), size=2, scales=1))
    assert np.array_equal(corner[0, :, :, 0], [[0, 0], [0, 1]])
    # Off to the right: l = (1, 0): c = (8, 4); patch starts at column 7: one column inside.
    right = np_(glimpse_sensor(img, np.array([[1.0, 0.0]], np.float32), size=2, scales=1))
    assert np.array_equal(right[0, :, :, 0], [[31, 0], [39, 0]])


def test_sensor_matches_the_numpy_reference_at_random_locations():
    rng = np.random.default_rng(0)
    images = rng.random((6, 20, 20, 1), dtype=np.float32)
    locs = rng.uniform(-1.3, 1.3, size=(6, 2)).astype(np.float32)  # some outside: clipped to the border
    out = np_(glimpse_sensor(images, locs, size=4, scales=3))
    assert out.shape == (6, 4, 4, 3)
    assert np.allclose(out, glimpse_numpy(images, locs, 4, 3), atol=1e-6)
    # Patch k is 4 * 2**k wide: the widest (16) averages 4x4 blocks; at the centre it lies inside the 20x20 image.
    centre = np_(glimpse_sensor(images[:1], np.zeros((1, 2), np.float32), size=4, scales=3))
    assert np.isclose(centre[0, 0, 0, 2], images[0, 2:6, 2:6, 0].mean(), atol=1e-6)


def test_rewards_by_hand():
    assert np.allclose(
        np_(gaussian_reward(np.array([0.0, 0.25, 1.0]), 0.26)),
        [1.0, math.exp(-0.0625 / 0.0676), math.exp(-1 / 0.0676)],
        atol=1e-6,
    )
    assert np.isclose(math.exp(-0.0625 / 0.26**2), 0.397, atol=1e-3)  # the variant's "~40 % at 0.25"
    assert np.array_equal(np_(binary_reward(np.array([0.05, 0.1, 0.2]), 0.1)), [1.0, 0.0, 0.0])
    logits = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]], np.float32)
    assert np.array_equal(np_(classification_reward(logits, np.array([1, 2]))), [1.0, 0.0])
    # [-1, 1] units: 0.5 units on a 60 px canvas = 15 px; over a 28 px box: 15 / 28.
    d = np_(normalised_distance(np.array([[0.5, 0.0]]), np.array([[0.0, 0.0]]), np.array([30.0 / 28.0])))
    assert np.allclose(d, [15 / 28], atol=1e-5)
    assert np.allclose(np_(regression_reward(np.array([0.3]), "binary", 1.0, 0.3)), [0.0])
    with pytest.raises(ValueError, match="reward must be one of"):
        regression_reward(np.array([0.3]), "hinge", 1.0, 0.3)


def test_landmark_metric_and_targets_by_hand():
    d = normalised_distances(
        np.array([[10.0, 10.0], [13.0, 14.0]]), np.array([[10.0, 11.0], [10.0, 10.0]]), np.array([20.0, 50.0])
    )
    assert np.allclose(d, [0.05, 0.1])
    assert detection_rates(np.array([0.01, 0.05, 0.1, 0.5])) == {
        "0.02": 0.25,
        "0.04": 0.25,
        "0.06": 0.5,
        "0.08": 0.5,
        "0.10": 0.75,
    }
    t = landmark_targets(np.array([[30.0, 15.0]]), np.array([28.0]), 60)
    assert np.allclose(t, [[0.0, -0.5, 30 / 28]])
    assert np.allclose(to_pixels(t[:, :2], 60), [[30.0, 15.0]])
    with pytest.raises(ValueError, match="at least one distance"):
        detection_rates(np.array([]))


def test_digit_centroids_are_the_ink_centres():
    images = np.zeros((2, 28, 28), np.float32)
    images[0, 10:12, 4:6] = 1.0  # centre (5, 11) within the digit
    images[1, 20, 20] = 1.0  # centre (20.5, 20.5)
    lm = digit_centroids(images, np.arange(2), size=60, n=5, seed=2)
    assert lm.images.shape == (5, 60, 60, 1) and np.all(lm.norms == 28)
    for img, p, b in zip(lm.images[..., 0], lm.points, lm.boxes):
        ys, xs = np.nonzero(img)
        assert np.allclose(p, [xs.mean() + 0.5, ys.mean() + 0.5])  # uniform ink: the mean pixel centre
        assert b[0] <= p[0] <= b[2] and b[1] <= p[1] <= b[3]


def test_voc_landmarks_letterbox_and_box_centre(tmp_path):
    from conftest import write_voc

    img = np.zeros((50, 100, 3), np.uint8)
    root = write_voc(
        tmp_path / "voc",
        [
            (
                "a",
                img,
                [
                    ("cat", (10, 20, 30, 40), False, False),
                    ("cat", (50, 0, 100, 50), False, False),
                    ("dog", (0, 0, 5, 5), False, False),
                ],
            )
        ],
        image_set="test",
    )
    lm = voc_landmarks(root, "test", "cat", size=40)
    # Scale 40/100 = 0.4; the 50-high photo becomes 20 high, centred: offset y = 10. Largest cat box (50,0,100,50).
    assert lm.images.shape == (1, 40, 40, 3)
    assert np.allclose(lm.boxes[0], [20, 10, 40, 30]) and np.allclose(lm.points[0], [30, 20])
    assert np.allclose(lm.norms, [20])
    canvas, scale, ox, oy = letterbox(np.full((50, 100, 3), 255, np.uint8), 40)
    assert (scale, ox, oy) == (0.4, 0.0, 10.0) and canvas[:10].max() == 0 and canvas[10:30].min() == 1.0
    with pytest.raises(ValueError, match="no image with class 'horse'"):
        voc_landmarks(root, "test", "horse")
    with pytest.raises(FileNotFoundError, match="no such VOC-layout folder"):
        voc_landmarks(tmp_path / "nowhere", "test")


def test_config_presets_and_errors(tmp_path):
    for preset in ("paper", "fast", "tiny"):
        for task in ("classify", "regress"):
            make_config(preset, task)
    reg = make_config("fast", "regress")
    assert reg.model_list() == ["ram", "cnn"] and reg.resolved_protocol() == "translated60"
    assert make_config("fast", "classify").resolved_protocol() == "cluttered60"
    assert make_config("paper", "regress").glimpse_net == "conv"
    assert make_config("fast", "classify", glimpses=4).glimpses == 4
    cfg = make_config("tiny", "classify")
    cfg.save(tmp_path / "config.json")
    assert GlimpseConfig.load(tmp_path / "config.json") == cfg
    bad = [
        ({"models": "ram,foo"}, "models must be one of"),
        ({"glimpses": 0}, "glimpses must be a positive"),
        ({"loc_std": 0.0}, "loc_std must lie in"),
        ({"core": "rnn"}, "core must be one of"),
        ({"dataset": "/some/voc"}, "a VOC folder is a regress dataset"),
        ({"models": "ram,ram"}, "repeat"),
    ]
    for overrides, text in bad:
        with pytest.raises(ConfigError, match=text):
            make_config("tiny", "classify", **overrides)
    with pytest.raises(ConfigError, match="unknown preset"):
        make_config("huge", "classify")


def test_by_model_names_ram_twice_and_a_baseline_once():
    from zoomrl.eval.glimpse_plots import by_model

    models = {
        "ram": {"mean_path": {"error": 0.25}, "monte_carlo": {"error": 0.125}},
        "cnn": {"error": 0.5},
    }
    assert by_model(models, "error") == {"ram mean": 0.25, "ram MC": 0.125, "cnn": 0.5}
