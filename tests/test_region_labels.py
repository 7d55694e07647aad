"""``--region-labels refined``: the region classifier labels each sampled box by where a box regressor fitted on
the other images moves it (:func:`zoomrl.experiments.region_scoring.refined_ious`), since a detection reports the
moved window."""

import numpy as np
import pytest

from conftest import TinyFeatures
from zoomrl.agents.region_scorer import RegionScorer, fit_region_scorer
from zoomrl.core.config import ConfigError
from zoomrl.core.geometry import apply_deltas, box_deltas, iou_matrix
from zoomrl.experiments.active.config import make_config
from zoomrl.experiments.region_scoring import RegionSamples, refined_ious


def _quiet(_):
    pass


@pytest.fixture(scope="module")
def data(square_voc):
    return square_voc


def _samples(descriptor_gain, n_images=4, empty=()):
    """Per image ``k``: one object and 8 boxes around it (IoU 0.3 to 0.9), each described by ``gain[k % 2]`` times
    the deltas that take it onto the object; images in ``empty`` hold no object (their boxes describe nothing)."""
    rng = np.random.default_rng(0)
    rows = {name: [] for name in RegionSamples._fields}
    for k in range(n_images):
        obj = np.array([[20.0 + 5 * k, 30.0, 120.0 + 5 * k, 110.0]])
        shift = rng.uniform(-25, 25, size=(8, 2))
        scale = rng.uniform(0.8, 1.25, size=(8, 1))
        centre = np.array([70.0 + 5 * k, 70.0]) + shift
        half = np.array([50.0, 40.0]) * scale
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        if k in empty:
            rows["descriptors"].append(np.zeros((8, 4)))
            rows["ious"].append(np.zeros(8))
            rows["objects"].append(boxes)
        else:
            rows["descriptors"].append(descriptor_gain[k % 2] * box_deltas(boxes, np.repeat(obj, 8, axis=0)))
            rows["ious"].append(iou_matrix(boxes, obj)[:, 0])
            rows["objects"].append(np.repeat(obj, 8, axis=0))
        rows["boxes"].append(boxes)
        rows["image"].append(np.full(8, k))
    return RegionSamples(**{name: np.concatenate(v) for name, v in rows.items()})


def test_a_regressor_that_reads_the_deltas_moves_every_box_onto_its_object():
    s = _samples((1.0, 1.0), empty=(3,))
    assert s.ious[s.image < 3].min() < 0.5 < s.ious.max()  # some boxes start as near misses
    out = refined_ious(s, alpha=1e-8, min_iou=0.3, clamp=False)
    np.testing.assert_allclose(out[s.image < 3], 1.0, atol=1e-6)
    assert (out[s.image == 3] == 0).all()  # no object: nothing to land on


def test_each_image_is_moved_by_the_regressor_of_the_other_fold():
    # Even images describe a box by its deltas, odd ones by twice them: the regressor fitted on the odd images
    # moves an even image's box half way, the one fitted on the even images moves an odd image's box twice as far.
    s = _samples((1.0, 2.0))
    out = refined_ious(s, alpha=1e-8, min_iou=0.3, clamp=False)
    true_deltas = box_deltas(s.boxes, s.objects)
    for k in range(4):
        rows = s.image == k
        factor = 0.5 if k % 2 == 0 else 2.0
        moved = np.clip(apply_deltas(s.boxes[rows], factor * true_deltas[rows]), 0, None)  # the image's edge
        want = np.diag(iou_matrix(moved, s.objects[rows]))
        np.testing.assert_allclose(out[rows], want, atol=1e-6)
    assert (out < 0.999).all()  # a regressor fitted on the box's own image would have reached IoU 1


def test_a_moved_box_counts_against_every_object_of_its_image():
    # Image 0 holds two raccoons far apart: boxes around the second land on it, at IoU 0 with the first.
    one, two = _samples((1.0, 1.0), n_images=3), _samples((1.0, 1.0), n_images=3)
    far = np.array([300.0, 0.0, 300.0, 0.0])  # the second object: the first's boxes and object shifted right
    rows = two.image == 0
    merged = RegionSamples(
        descriptors=np.concatenate([one.descriptors, two.descriptors[rows]]),
        ious=np.concatenate([one.ious, two.ious[rows]]),
        boxes=np.concatenate([one.boxes, two.boxes[rows] + far]),
        objects=np.concatenate([one.objects, two.objects[rows] + far]),
        image=np.concatenate([one.image, two.image[rows]]),
    )
    out = refined_ious(merged, alpha=1e-8, min_iou=0.3, clamp=False)
    np.testing.assert_allclose(out, 1.0, atol=1e-6)


def test_refined_ious_need_two_images():
    s = _samples((1.0, 1.0), n_images=1)
    with pytest.raises(ValueError, match="at least 2 images"):
        refined_ious(s)


def test_the_target_needs_both_region_models_and_is_a_training_flag():
    from zoomrl.experiments.active.cli import build_parser, make_run_config
    from zoomrl.experiments.hierarchical.cli import build_parser as hierarchical_parser
    from zoomrl.experiments.hierarchical.cli import make_run_config as hierarchical_config

    assert make_config("tiny").region_labels == "window"
    with pytest.raises(ConfigError, match="needs region_scorer and box_regression"):
        make_config("tiny", region_scorer=True, region_labels="refined")
    with pytest.raises(ConfigError, match="needs region_scorer and box_regression"):
        make_config("tiny", box_regression=True, region_labels="refined")
    with pytest.raises(ConfigError, match="region_labels"):
        make_config("tiny", region_scorer=True, box_regression=True, region_labels="moved")
    argv = ["--preset", "fast_roi", "--region-labels", "refined"]
    assert make_run_config(build_parser("train").parse_args(argv)).region_labels == "refined"
    argv = ["--preset", "fast2", "--region-scorer", "--region-labels", "refined"]
    assert hierarchical_config(hierarchical_parser("train").parse_args(argv)).region_labels == "refined"


def test_a_run_fits_its_classifier_on_the_refined_labels(data, tmp_path):
    from zoomrl.data.images import ImageStore, load_images
    from zoomrl.experiments.active.train import ActiveTrainee, train
    from zoomrl.experiments.dqn_trainee import split_validation
    from zoomrl.experiments.region_scoring import region_samples

    lines = []
    cfg = make_config(
        "tiny", class_object="box", epochs=1, region_scorer=True, box_regression=True, region_labels="refined"
    )
    train(cfg, [data / "train"], "trainval", tmp_path / "m", features=TinyFeatures(), log=lines.append,
          show_progress=False)  # fmt: skip
    scorer = RegionScorer.load(tmp_path / "m" / "box" / "region_scorer.npz")
    images = load_images([data / "train"], "trainval", "box", False, None, _quiet, progress=False)
    train_images, _ = split_validation(images, cfg.val_fraction, cfg.seed)
    s = region_samples(train_images, ImageStore(), TinyFeatures(), "box", cfg.seed, ActiveTrainee.view_of(cfg))
    labels = refined_ious(s)
    refit = fit_region_scorer(s.descriptors, labels, seed=cfg.seed)
    np.testing.assert_allclose(refit.weights, scorer.weights, rtol=1e-6, atol=1e-9)
    assert scorer.n_positives == int((labels >= 0.5).sum())
    assert scorer.n_positives != int((s.ious >= 0.5).sum())  # the labels differ from the windows' own
    assert any("(refined)" in line for line in lines)
