"""The region classifier of the active family (``--region-scorer``): the boxes it trains on, the classifier, its
file, the scores it gives the boxes the agent visited, and a run that trains, validates and tests with it."""

import json

import numpy as np
import pytest

from conftest import TinyFeatures
from zoomrl.agents.region_scorer import RegionScorer, fit_region_scorer, labels_from_iou
from zoomrl.core.config import ConfigError
from zoomrl.core.geometry import iou_matrix, sample_boxes
from zoomrl.core.io import FileDamagedError
from zoomrl.envs.active import context_window
from zoomrl.experiments.active.config import make_config
from zoomrl.vision.features import Request


def _quiet(_):
    pass


def ACTIVE_VIEW(window, width, height):
    """The active family's view of a window with the default context (16 px at 224)."""
    return context_window(window, width, height, 16)


def test_sampled_boxes_hold_the_image_the_objects_and_jitter_around_them():
    objects = np.array([[10.0, 10.0, 50.0, 40.0]])
    boxes = sample_boxes(100, 80, objects, np.random.default_rng(0), jitter_per_object=5, random_boxes=3)
    np.testing.assert_array_equal(boxes[0], [0, 0, 100, 80])
    np.testing.assert_array_equal(boxes[1], objects[0])
    assert 2 < len(boxes) <= 1 + 1 + 5 + 3
    assert (boxes[:, [0, 1]] >= 0).all() and (boxes[:, 2] <= 100).all() and (boxes[:, 3] <= 80).all()
    assert ((boxes[:, 2] - boxes[:, 0]) >= 8).all() and ((boxes[:, 3] - boxes[:, 1]) >= 8).all()
    again = sample_boxes(100, 80, objects, np.random.default_rng(0), jitter_per_object=5, random_boxes=3)
    np.testing.assert_array_equal(boxes, again)
    # Many jittered boxes of a central object (no clipping): centres about the object's, sides about its sides
    # (a normal of 0.25 of the side: standard error 0.25 * 40 / sqrt(4000) = 0.16 px).
    obj = np.array([[300.0, 300.0, 340.0, 320.0]])
    many = sample_boxes(1000, 1000, obj, np.random.default_rng(1), jitter_per_object=4000, random_boxes=0)[2:]
    centres = (many[:, :2] + many[:, 2:]) / 2
    np.testing.assert_allclose(centres.mean(axis=0), [320.0, 310.0], atol=1.0)
    np.testing.assert_allclose(centres.std(axis=0), [10.0, 5.0], rtol=0.05)
    log_sides = np.log((many[:, 2:] - many[:, :2]) / [40.0, 20.0])
    np.testing.assert_allclose(log_sides.mean(axis=0), 0.0, atol=0.02)
    np.testing.assert_allclose(log_sides.std(axis=0), 0.35, rtol=0.05)
    # Boxes under the minimum side are dropped, a tiny object's own box too; no object: image and random boxes.
    tiny = sample_boxes(100, 80, np.array([[0.0, 0.0, 4.0, 4.0]]), np.random.default_rng(0), 0, 0)
    np.testing.assert_array_equal(tiny, [[0, 0, 100, 80]])
    assert len(sample_boxes(100, 80, np.zeros((0, 4)), np.random.default_rng(0), 5, 3)) == 4


def test_labels_leave_the_boxes_between_the_thresholds_out():
    ious = np.array([0.0, 0.29, 0.3, 0.49, 0.5, 0.9])
    used, positive = labels_from_iou(ious, 0.5, 0.3)  # R-CNN's negatives
    assert used.tolist() == [True, True, False, False, True, True]
    assert positive.tolist() == [False, False, False, False, True, True]
    used, positive = labels_from_iou(ious)  # the default: every box counts, a near miss as a negative
    assert used.tolist() == [True] * 6 and positive.tolist() == [False, False, False, False, True, True]


def test_the_scorer_is_the_standardised_linear_score_and_survives_its_file(tmp_path):
    scorer = RegionScorer(np.array([1.0, 2.0]), np.array([2.0, 0.5]), np.array([3.0, -1.0]), 0.25, 4, 6)
    x = np.array([[3.0, 2.0], [1.0, 3.0]])
    # by hand: ((3-1)/2)*3 + ((2-2)/0.5)*-1 + 0.25 = 3.25; ((1-1)/2)*3 + ((3-2)/0.5)*-1 + 0.25 = -1.75
    np.testing.assert_allclose(scorer.score(x), [3.25, -1.75])
    with pytest.raises(ValueError, match=r"expected descriptors \(N, 2\)"):
        scorer.score(np.zeros((1, 3)))
    path = tmp_path / "run" / "region_scorer.npz"
    scorer.save(path)
    back = RegionScorer.load(path)
    np.testing.assert_array_equal(back.score(x), scorer.score(x))
    assert (back.n_positives, back.n_negatives, back.bias) == (4, 6, 0.25)
    assert [p.name for p in path.parent.iterdir()] == ["region_scorer.npz"]  # no temporary file left
    with pytest.raises(FileNotFoundError, match="region_scorer.npz: no such region scorer"):
        RegionScorer.load(tmp_path / "region_scorer.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(FileDamagedError, match="bad.npz"):
        RegionScorer.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "other.npz", weights=np.zeros(2))
    with pytest.raises(FileDamagedError, match="other.npz: not a region scorer"):
        RegionScorer.load(tmp_path / "other.npz")


def test_the_fitted_scorer_ranks_covering_boxes_first():
    """Descriptors whose first value is the box's IoU plus noise, the rest noise: the fitted scorer ranks held-out
    positives above negatives, and counts its examples as the thresholds say."""
    rng = np.random.default_rng(0)

    def boxes(n):
        ious = rng.uniform(0, 1, n)
        x = rng.normal(0, 1, (n, 20))
        x[:, 0] = 4 * ious + rng.normal(0, 0.2, n)
        return x, ious

    x, ious = boxes(400)
    scorer = fit_region_scorer(x, ious, c=1.0)
    used, positive = labels_from_iou(ious)
    assert (scorer.n_positives, scorer.n_negatives) == (int((used & positive).sum()), int((used & ~positive).sum()))
    xt, it = boxes(200)
    s = scorer.score(xt)
    assert s[it >= 0.6].min() > s[it < 0.2].max()
    assert np.argmax(np.abs(scorer.weights)) == 0 and scorer.weights[0] > 0
    with pytest.raises(ValueError, match="needs positive"):
        fit_region_scorer(x[ious < 0.3], ious[ious < 0.3])


@pytest.fixture(scope="module")
def data(square_voc):
    return square_voc


def test_visited_boxes_are_scored_with_their_context_on_the_clean_image(data):
    """score_records gives each window of each search, in order, the scorer's value of the window's descriptor
    with R-CNN context on the image as loaded (a cross painted by the agent does not count)."""
    from zoomrl.data.images import ImageStore, load_images
    from zoomrl.experiments.region_scoring import score_records

    images = load_images([data / "train"], "trainval", "box", False, 2, _quiet, progress=False)
    store = ImageStore()
    features = TinyFeatures()
    scorer = RegionScorer(np.zeros(36), np.ones(36), np.ones(36), -1.0)  # the thumbnail's sum, minus 1
    windows = [[[0.0, 0.0, 24.0, 24.0], [12.0, 12.0, 60.0, 36.0]], [[24.0, 24.0, 48.0, 48.0]]]
    record = {"image_id": images[1].image_id, "searches": [{"windows": w, "actions": [0] * len(w)} for w in windows]}
    empty = {"image_id": images[0].image_id, "searches": [{"windows": [], "actions": []}]}
    view = lambda window, w, h: context_window(window, w, h, 16)  # noqa: E731
    out = score_records([empty, record], images, store, features, scorer, view)
    assert out[0] is empty and "region_score" not in empty["searches"][0]
    pixels = store.get(images[1])
    # context 16 of 224: each side grows by 16/192 = 1/12 of the box's side, clipped to the 64 x 64 image
    by_hand = [[(0, 0, 26, 26), (8, 10, 64, 38)], [(22, 22, 50, 50)]]
    for search, boxes in zip(record["searches"], by_hand):
        want = [features.describe([Request("k", (), pixels, b)])[0].sum() - 1.0 for b in boxes]
        np.testing.assert_allclose(search["region_score"], want, rtol=1e-5)


def _train(cfg, data, model_dir):
    from zoomrl.experiments.active.train import train

    return train(cfg, [data / "train"], "trainval", model_dir, features=TinyFeatures(), log=_quiet, show_progress=False)


def test_a_run_trains_validates_and_tests_with_its_region_scorer(data, tmp_path):
    from zoomrl.data.images import ImageStore, load_images
    from zoomrl.experiments.active.test import test
    from zoomrl.experiments.region_scoring import describe_boxes, region_samples

    cfg = make_config("tiny", class_object="box", epochs=2, val_fraction=0.25, region_scorer=True)
    _train(cfg, data, tmp_path / "m")
    run = tmp_path / "m" / "box"
    scorer = RegionScorer.load(run / "region_scorer.npz")
    # it is the classifier of the training images' sampled boxes (the validation image held out)
    record = json.loads((run / "validation.json").read_text())
    train_images = [
        im
        for im in load_images([data / "train"], "trainval", "box", False, None, _quiet, progress=False)
        if im.image_id not in record["images"]
    ]
    x, ious, *_ = region_samples(train_images, ImageStore(), TinyFeatures(), "box", cfg.seed, ACTIVE_VIEW)
    refit = fit_region_scorer(x, ious, seed=cfg.seed)
    np.testing.assert_allclose(refit.weights, scorer.weights, rtol=1e-6, atol=1e-9)
    for epoch in record["epochs"]:
        assert "region_score" in epoch["ap_by_score"] and "region_score" in epoch["aar_ap_by_score"]
    kw = dict(model_dir=tmp_path / "m", features=TinyFeatures(), log=_quiet, show_progress=False, baselines=False)
    res = test(make_config("tiny", class_object="box", aar_score="region_score"), [data / "test"], "test", None,
               tmp_path / "r", **kw)  # fmt: skip
    assert res["config"]["region_scorer"] is True and res["aar_score"] == "region_score"
    assert res["agent"]["all_attended_regions"]["ap_area"] == res["aar_by_score"]["region_score"]["ap_area"]
    assert "region_score" in res["agent_by_score"]
    # every visited window of the test carries the scorer's value of its descriptor on the clean image
    images = {im.image_id: im for im in load_images([data / "test"], "test", "box", False, None, _quiet, False)}
    store = ImageStore()
    for rec in json.loads((tmp_path / "r" / "detections.json").read_text())["images"]:
        image = images[rec["image_id"]]
        for search in rec["searches"]:
            assert len(search["region_score"]) == len(search["windows"])
            boxes = np.array(search["windows"])
            want = scorer.score(describe_boxes(image, store.get(image), boxes, TinyFeatures(), ACTIVE_VIEW))
            np.testing.assert_allclose(search["region_score"], want, rtol=1e-5, atol=1e-6)


def test_a_hierarchical_run_scores_its_triggered_windows(data, tmp_path):
    """The hierarchy sees a window as it is: its run's classifier scores each visited window's own descriptor,
    validation weighs ``region_score`` among the detection scores, and a test may rank by it."""
    from zoomrl.data.images import ImageStore, load_images
    from zoomrl.experiments.hierarchical.config import make_config as hierarchical_config
    from zoomrl.experiments.hierarchical.test import test
    from zoomrl.experiments.hierarchical.train import train
    from zoomrl.experiments.region_scoring import describe_boxes, window_itself

    cfg = hierarchical_config("tiny", class_object="box", epochs=1, val_fraction=0.25, region_scorer=True)
    train(cfg, [data / "train"], "trainval", tmp_path / "m", features=TinyFeatures(), log=_quiet, show_progress=False)
    run = tmp_path / "m" / "box"
    scorer = RegionScorer.load(run / "region_scorer.npz")
    record = json.loads((run / "validation.json").read_text())
    assert all("region_score" in e["ap_by_score"] for e in record["epochs"])
    kw = dict(model_dir=tmp_path / "m", features=TinyFeatures(), log=_quiet, show_progress=False, baselines=False)
    res = test(hierarchical_config("tiny", class_object="box", score="region_score"), [data / "test"], "test", None,
               tmp_path / "r", **kw)  # fmt: skip
    assert res["config"]["region_scorer"] is True and res["score"] == "region_score"
    assert res["agent"]["ap_area"] == res["agent_by_score"]["region_score"]["ap_area"]
    images = {im.image_id: im for im in load_images([data / "test"], "test", "box", False, None, _quiet, False)}
    store, n = ImageStore(), 0
    for rec in json.loads((tmp_path / "r" / "detections.json").read_text())["images"]:
        image = images[rec["image_id"]]
        for search in rec["searches"]:
            boxes = np.array(search["windows"])
            want = scorer.score(describe_boxes(image, store.get(image), boxes, TinyFeatures(), window_itself))
            np.testing.assert_allclose(search["region_score"], want, rtol=1e-5, atol=1e-6)
            n += len(boxes)
    assert n > 0


def test_region_score_ranks_the_triggered_windows():
    """Two triggered windows of one image, the hit H and the miss M: the trigger's Q-value puts M first (AP 1/2),
    the region score H (AP 1); a record without region scores cannot be scored by it."""
    from zoomrl.eval.detection import available_scores, evaluate, rescored

    H, M = [0, 0, 10, 10], [30, 30, 40, 40]
    q = lambda trigger: [0.0] * 5 + [trigger]  # noqa: E731
    searches = [
        {"windows": [H], "actions": [5], "q_values": [q(1.0)], "region_score": [2.0], "triggered": True},
        {"windows": [M], "actions": [5], "q_values": [q(2.0)], "region_score": [-1.0], "triggered": True},
    ]
    for s in searches:
        s.update(box=s["windows"][-1], score=None, steps=1)
    recs = [{"image_id": "a", "ground_truth": [{"box": H, "difficult": False}], "searches": searches}]
    assert "region_score" in available_scores(recs)
    assert evaluate(rescored(recs, "region_score"))["ap_area"] == pytest.approx(1.0)
    assert evaluate(rescored(recs, "trigger_q"))["ap_area"] == pytest.approx(0.5)
    for s in searches:
        del s["region_score"]
    assert "region_score" not in available_scores(recs)


def test_the_scorer_learns_the_squares(data):
    """Fitted on the training images' sampled boxes, the scorer puts each test square's own box above a box of
    the image that misses it."""
    from zoomrl.data.images import ImageStore, load_images
    from zoomrl.experiments.region_scoring import describe_boxes, region_samples

    cfg = make_config("tiny", class_object="box")
    store, features = ImageStore(), TinyFeatures()
    train_images = load_images([data / "train"], "trainval", "box", False, None, _quiet, progress=False)
    scorer = fit_region_scorer(*region_samples(train_images, store, features, "box", cfg.seed, ACTIVE_VIEW)[:2])
    for image in load_images([data / "test"], "test", "box", False, None, _quiet, progress=False):
        pixels = store.get(image)
        gt = np.array(image.boxes("box", include_difficult=False), dtype=np.float64)
        corners = np.array([[0, 0, 20, 20], [44, 0, 64, 20], [0, 44, 20, 64], [44, 44, 64, 64]], dtype=np.float64)
        miss = corners[np.argmin(iou_matrix(corners, gt)[:, 0])]
        s = scorer.score(describe_boxes(image, pixels, np.stack([gt[0], miss]), features, ACTIVE_VIEW))
        assert s[0] > s[1]


def test_a_run_without_the_scorer_cannot_be_scored_by_it(data, tmp_path):
    from zoomrl.experiments.active.test import test

    _train(make_config("tiny", class_object="box", epochs=1), data, tmp_path / "m")
    assert not (tmp_path / "m" / "box" / "region_scorer.npz").exists()
    kw = dict(model_dir=tmp_path / "m", features=TinyFeatures(), log=_quiet, show_progress=False, baselines=False)
    with pytest.raises(ValueError, match="region_score one trained with --region-scorer"):
        test(make_config("tiny", class_object="box", aar_score="region_score"), [data / "test"], "test", None,
             tmp_path / "r", **kw)  # fmt: skip


def test_the_option_is_a_training_flag_refused_with_pixels():
    from zoomrl.experiments.active.cli import build_parser, make_run_config

    assert make_config("fast_roi").region_scorer is True and make_config("fast").region_scorer is False
    with pytest.raises(ConfigError, match="region_scorer needs box descriptors"):
        make_config("tiny", features="scratch", region_scorer=True)
    args = build_parser("train").parse_args(["--preset", "fast", "--region-scorer"])
    assert make_run_config(args).region_scorer is True
    args = build_parser("train").parse_args(["--preset", "fast_roi", "--no-region-scorer"])
    assert make_run_config(args).region_scorer is False


def test_the_choice_script_scores_the_validation_boxes_of_a_run(data, tmp_path):
    """scripts/region_scorer_choice.py: one row per (negatives, C), each the APs of the run's validation boxes
    under that classifier; the run's own classifier (its defaults) gives its row; a run without a validation split
    is one line, exit code 2."""
    import subprocess
    import sys

    from conftest import REPO
    from zoomrl.experiments.dqn_trainee import split_validation

    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import region_scorer_choice
    finally:
        sys.path.pop(0)
    cfg = make_config("tiny", class_object="box", epochs=1, val_fraction=0.25, region_scorer=True)
    _train(cfg, data, tmp_path / "m")
    run = tmp_path / "m" / "box"
    result = region_scorer_choice.compare(
        run, [str(data / "train")], "trainval", [0.3, 0.5], [1e-5, 1.0], features=TinyFeatures(), log=_quiet
    )
    assert [(r["negative_iou"], r["c"]) for r in result["rows"]] == [(0.3, 1e-5), (0.3, 1.0), (0.5, 1e-5), (0.5, 1.0)]
    assert result["images"] == json.loads((run / "validation.json").read_text())["images"]
    assert all(0.0 <= r["aar_ap"] <= 1.0 and 0.0 <= r["tr_ap"] <= 1.0 for r in result["rows"])
    # The run's own classifier (negatives below 0.5, C 1e-5) on the same boxes: the same AP as its row.
    from zoomrl.agents.dqn.agent import agent_outputs
    from zoomrl.agents.dqn.checkpoint import load_weights_checked
    from zoomrl.data.images import ImageStore, load_images
    from zoomrl.envs.active import TRIGGER
    from zoomrl.envs.active_runs import run_records, test_policy
    from zoomrl.eval.proposals import attended_by_score
    from zoomrl.experiments.active.train import ActiveTrainee
    from zoomrl.experiments.region_scoring import score_records

    saved = make_config("tiny", class_object="box", epochs=1, val_fraction=0.25, region_scorer=True)
    images = load_images([data / "train"], "trainval", "box", False, None, _quiet, progress=False)
    _, val = split_validation(images, saved.val_fraction, saved.seed)
    features, agent, size = ActiveTrainee.build(saved, TinyFeatures(), _quiet)
    load_weights_checked(run / "best.weights.h5", agent, ActiveTrainee.run_meta(saved, size))
    store = ImageStore()
    records = run_records(val, store, saved, test_policy(saved), saved.test_batch, features, agent_outputs(agent))
    score_records(records, val, store, features, RegionScorer.load(run / "region_scorer.npz"), ACTIVE_VIEW)
    own = attended_by_score(records, TRIGGER, saved.aar_nms, ["region_score"])["region_score"]["ap_area"]
    assert result["rows"][2]["aar_ap"] == pytest.approx(own)
    # no validation split: one line, exit code 2
    _train(make_config("tiny", class_object="box", epochs=1), data, tmp_path / "n")
    script = [sys.executable, str(REPO / "scripts" / "region_scorer_choice.py")]
    out = subprocess.run([*script, "--run-dir", str(tmp_path / "n" / "box"), "--data", str(data / "train")],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 2 and "no validation split" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_a_resumed_run_reads_its_classifier_or_fits_the_same_one(data, tmp_path):
    from zoomrl.experiments.active.train import train

    cfg = make_config("tiny", class_object="box", epochs=1, val_fraction=0.25, region_scorer=True)
    kw = dict(features=TinyFeatures(), log=_quiet, show_progress=False)
    train(cfg, [data / "train"], "trainval", tmp_path / "m", **kw)
    path = tmp_path / "m" / "box" / "region_scorer.npz"
    first = RegionScorer.load(path)
    path.unlink()  # lost between the runs: the resumed run's validation fits it again
    train(cfg.replace(epochs=2), [data / "train"], "trainval", tmp_path / "m", resume=True, **kw)
    again = RegionScorer.load(path)
    np.testing.assert_array_equal(again.weights, first.weights)
    assert again.bias == first.bias
    record = json.loads((tmp_path / "m" / "box" / "validation.json").read_text())
    assert [e["epoch"] for e in record["epochs"]] == [1, 2]
    assert all("region_score" in e["aar_ap_by_score"] for e in record["epochs"])
