"""The box regressor of the detecting families (``--box-regression``): R-CNN's deltas, the ridge, the fitted
regressor and its file, detections at the moved windows, and runs of both families that train, validate and test
with it."""

import copy
import json

import numpy as np
import pytest

from conftest import TinyFeatures
from zoomrl.agents.box_regressor import BoxRegressor, fit_box_regressor, ridge
from zoomrl.core.config import ConfigError
from zoomrl.core.geometry import apply_deltas, box_deltas, iou_matrix
from zoomrl.core.io import FileDamagedError
from zoomrl.envs.active import context_window
from zoomrl.experiments.active.config import make_config


def _quiet(_):
    pass


def ACTIVE_VIEW(window, width, height):
    return context_window(window, width, height, 16)


def test_deltas_by_hand_and_their_inverse():
    # (0, 0, 10, 20) -> (5, 0, 25, 40): the centre (5, 10) -> (15, 20) is one width right and half a height down,
    # and both sides double.
    d = box_deltas(np.array([[0.0, 0.0, 10.0, 20.0]]), np.array([[5.0, 0.0, 25.0, 40.0]]))
    np.testing.assert_allclose(d, [[1.0, 0.5, np.log(2), np.log(2)]])
    np.testing.assert_allclose(apply_deltas(np.array([[0.0, 0.0, 10.0, 20.0]]), d), [[5.0, 0.0, 25.0, 40.0]])
    np.testing.assert_allclose(box_deltas(np.array([[3.0, 4, 9, 8]]), np.array([[3.0, 4, 9, 8]])), 0.0, atol=1e-12)
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 100, (50, 2))
    a = np.concatenate([corners, corners + rng.uniform(5, 50, (50, 2))], axis=1)
    corners = rng.uniform(0, 100, (50, 2))
    b = np.concatenate([corners, corners + rng.uniform(5, 50, (50, 2))], axis=1)
    np.testing.assert_allclose(apply_deltas(a, box_deltas(a, b)), b, atol=1e-9)


@pytest.mark.parametrize("n, d", [(40, 6), (6, 40)])  # the primal and the dual form
def test_ridge_is_scikit_learns_with_an_unpenalised_intercept(n, d):
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(n, d)), rng.normal(size=(n, 4))
    for alpha in (0.1, 10.0):
        w, b = ridge(x, y, alpha)
        ref = Ridge(alpha=alpha, fit_intercept=True).fit(x, y)
        np.testing.assert_allclose(w, ref.coef_.T, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(b, ref.intercept_, rtol=1e-6, atol=1e-9)
    # One feature by hand: x = (0, 1, 2), y = (1, 3, 5) = 1 + 2x; centred, w = sum(xc yc) / (sum(xc^2) + alpha)
    w, b = ridge(np.array([[0.0], [1.0], [2.0]]), np.array([[1.0], [3.0], [5.0]]), 2.0)
    assert w[0, 0] == pytest.approx(4.0 / 4.0) and b[0] == pytest.approx(3.0 - 1.0 * 1.0)


def _shifted(rng, objects, n):
    """``n`` boxes jittered around each object, with a descriptor that holds the deltas back to the object (plus
    noise features): what a perfect feature would tell the regressor."""
    boxes, targets = [], []
    for obj in objects:
        w, h = obj[2] - obj[0], obj[3] - obj[1]
        shift = rng.normal(0, 0.1, (n, 2)) * [w, h]
        scale = np.exp(rng.normal(0, 0.1, (n, 2)))
        centre = (obj[:2] + obj[2:]) / 2 + shift
        sides = scale * [w, h]
        boxes.append(np.concatenate([centre - sides / 2, centre + sides / 2], axis=1))
        targets.append(np.repeat(obj[None], n, axis=0))
    boxes, targets = np.concatenate(boxes), np.concatenate(targets)
    x = np.concatenate([box_deltas(boxes, targets), rng.normal(size=(len(boxes), 3))], axis=1)
    return x, boxes, targets, np.diag(iou_matrix(boxes, targets))


def test_a_fitted_regressor_moves_boxes_onto_their_object_and_survives_its_file(tmp_path):
    rng = np.random.default_rng(2)
    objects = np.array([[20.0, 30.0, 80.0, 90.0], [100.0, 10.0, 140.0, 70.0]])
    x, boxes, targets, ious = _shifted(rng, objects, 200)
    reg = fit_box_regressor(x, ious, boxes, targets, alpha=1e-3, min_iou=0.5, clamp=False)
    assert reg.n_examples == int((ious >= 0.5).sum()) and reg.weights.shape == (7, 4)
    assert reg.low is None and reg.high is None
    xt, bt, tt, it = _shifted(np.random.default_rng(3), objects, 50)
    moved = reg.refine(bt, xt, 200, 120)
    assert np.diag(iou_matrix(moved, tt)).min() > 0.99 and it.mean() < 0.9
    # clipped to the image
    far = reg.refine(np.array([[150.0, 60.0, 200.0, 120.0]]), np.array([[2.0, 2.0, 1.0, 1.0, 0, 0, 0]]), 200, 120)
    np.testing.assert_array_equal(far[0, 2:], [200.0, 120.0])
    path = tmp_path / "run" / "box_regressor.npz"
    reg.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["box_regressor.npz"]
    back = BoxRegressor.load(path)
    np.testing.assert_array_equal(back.refine(bt, xt, 200, 120), moved)
    assert back.n_examples == reg.n_examples
    with pytest.raises(ValueError, match=r"expected descriptors \(N, 7\)"):
        reg.deltas(np.zeros((2, 5)))
    with pytest.raises(FileNotFoundError, match="no such box regressor"):
        BoxRegressor.load(tmp_path / "none.npz")
    np.savez(tmp_path / "bad.npz", mean=np.zeros(3), scale=np.ones(3), weights=np.zeros((3, 2)), bias=np.zeros(2),
             count=np.array(1))  # fmt: skip
    with pytest.raises(FileDamagedError, match="not a box regressor"):
        BoxRegressor.load(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="at least 2 boxes with IoU >= 0.5"):
        fit_box_regressor(x, np.zeros(len(ious)), boxes, targets)


def test_detections_report_the_moved_windows():
    """A near miss (IoU 0.47) moved onto the object: the terminal detection and the attended box both hit
    (AP 1), and ``unrefined`` gives back the agent's own windows (AP 0). Recall against proposals counts the agent's
    windows, or (``moved``) the moved ones."""
    from zoomrl.eval.detection import evaluate, has_refined, unrefined
    from zoomrl.eval.proposals import attended_records, recall_vs_proposals

    gt, near = [0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 4.7]
    assert iou_matrix(np.array([near]), np.array([gt]))[0, 0] == pytest.approx(0.47)
    search = {"windows": [near], "actions": [5], "q_values": [[0.0] * 5 + [1.0]], "triggered": True, "box": near,
              "score": 1.0, "steps": 1, "refined": [gt]}  # fmt: skip
    recs = [{"image_id": "a", "ground_truth": [{"box": gt, "difficult": False}], "searches": [search]}]
    assert has_refined(recs) and not has_refined(unrefined(recs))
    assert "refined" in recs[0]["searches"][0]  # unrefined copies
    assert evaluate(recs)["ap_area"] == pytest.approx(1.0)
    assert evaluate(unrefined(recs))["ap_area"] == pytest.approx(0.0)
    assert evaluate(attended_records(recs, 5))["ap_area"] == pytest.approx(1.0)
    assert evaluate(attended_records(unrefined(recs), 5))["ap_area"] == pytest.approx(0.0)
    assert recall_vs_proposals(recs, (1,)) == {"1": 0.0}
    assert recall_vs_proposals(recs, (1,), moved=True) == {"1": 1.0}
    assert recall_vs_proposals(unrefined(recs), (1,), moved=True) == {"1": 0.0}  # no move: the window itself


@pytest.fixture(scope="module")
def data(square_voc):
    return square_voc


def images_of(data):
    from zoomrl.data.images import load_images

    return load_images([data / "test"], "test", "box", False, None, _quiet, False)


def res_config(res):
    return make_config("tiny", class_object="box").replace(box_regression=res["config"]["box_regression"])


def _refit(data, run, cfg, view):
    from zoomrl.data.images import ImageStore, load_images
    from zoomrl.experiments.region_scoring import region_samples

    held_out = json.loads((run / "validation.json").read_text())["images"]
    images = load_images([data / "train"], "trainval", "box", False, None, _quiet, progress=False)
    train = [im for im in images if im.image_id not in held_out]
    return fit_box_regressor(*region_samples(train, ImageStore(), TinyFeatures(), "box", cfg.seed, view)[:4])


def _check_test_records(data, out, regressor, view):
    """Every visited window of a test carries the regressor's move of it, from its descriptor on the clean image."""
    from zoomrl.data.images import ImageStore, load_images
    from zoomrl.experiments.region_scoring import describe_boxes

    images = {im.image_id: im for im in load_images([data / "test"], "test", "box", False, None, _quiet, False)}
    store, n = ImageStore(), 0
    records = json.loads((out / "detections.json").read_text())["images"]
    for rec in records:
        image = images[rec["image_id"]]
        pixels = store.get(image)
        for search in rec["searches"]:
            boxes = np.array(search["windows"])
            want = regressor.refine(boxes, describe_boxes(image, pixels, boxes, TinyFeatures(), view), 64, 64)
            np.testing.assert_allclose(search["refined"], want, rtol=1e-5, atol=1e-4)
            n += len(boxes)
    assert n > 0
    return records


def test_an_active_run_trains_validates_and_tests_with_its_box_regressor(data, tmp_path):
    from zoomrl.eval.detection import evaluate, rescored, unrefined
    from zoomrl.eval.proposals import attended_by_score
    from zoomrl.experiments.active.test import test
    from zoomrl.experiments.active.train import train

    cfg = make_config("tiny", class_object="box", epochs=2, val_fraction=0.25, box_regression=True)
    train(cfg, [data / "train"], "trainval", tmp_path / "m", features=TinyFeatures(), log=_quiet, show_progress=False)
    run = tmp_path / "m" / "box"
    saved = BoxRegressor.load(run / "box_regressor.npz")
    assert not (run / "region_scorer.npz").exists()
    refit = _refit(data, run, cfg, ACTIVE_VIEW)  # the training images' sampled boxes, seen with R-CNN context
    np.testing.assert_allclose(refit.weights, saved.weights, rtol=1e-6, atol=1e-9)
    kw = dict(model_dir=tmp_path / "m", features=TinyFeatures(), log=_quiet, show_progress=False, baselines=False)
    res = test(make_config("tiny", class_object="box"), [data / "test"], "test", None, tmp_path / "r", **kw)
    assert res["config"]["box_regression"] is True
    records = _check_test_records(data, tmp_path / "r", saved, ACTIVE_VIEW)
    # the agent's figures come from the moved windows, the unrefined ones from the windows themselves
    score, aar = res["score"], res["aar_score"]
    assert res["agent"]["terminal_regions"]["ap_area"] == pytest.approx(evaluate(rescored(records, score))["ap_area"])
    plain = evaluate(rescored(unrefined(records), score))["ap_area"]
    assert res["unrefined_by_score"][score]["ap_area"] == pytest.approx(plain)
    from zoomrl.envs.active import TRIGGER

    moved = attended_by_score(records, TRIGGER, cfg.aar_nms, [aar])[aar]["ap_area"]
    kept = attended_by_score(unrefined(records), TRIGGER, cfg.aar_nms, [aar])[aar]["ap_area"]
    assert res["aar_by_score"][aar]["ap_area"] == pytest.approx(moved)
    assert res["unrefined_aar_by_score"][aar]["ap_area"] == pytest.approx(kept)
    from zoomrl.eval.proposals import recall_vs_proposals

    assert res["agent"]["recall_vs_proposals_moved"] == recall_vs_proposals(records, moved=True)
    assert res["agent"]["recall_vs_proposals"] == recall_vs_proposals(unrefined(records))
    # with the baselines, the random agent's boxes moved by the same regressor for the same comparison; its AP
    # stays its own boxes'
    from zoomrl.data.images import ImageStore
    from zoomrl.envs.active_runs import run_records
    from zoomrl.envs.oracles import random_policy, score_random
    from zoomrl.experiments.region_scoring import score_records

    res2 = test(make_config("tiny", class_object="box"), [data / "test"], "test", None, tmp_path / "r2",
                **{**kw, "baselines": True})  # fmt: skip
    test_cfg, store = res_config(res2), ImageStore()
    rand = run_records(images_of(data), store, test_cfg, random_policy(test_cfg.seed, test_cfg.num_actions), 8)
    score_random(rand, test_cfg.seed)
    assert res2["random"]["terminal_regions"]["ap_area"] == pytest.approx(evaluate(rand)["ap_area"])
    score_records(rand, images_of(data), store, TinyFeatures(), None, ACTIVE_VIEW, saved)
    assert res2["random"]["recall_vs_proposals_moved"] == recall_vs_proposals(rand, moved=True)
    assert res2["random"]["recall_vs_proposals"] == recall_vs_proposals(unrefined(rand))
    assert (tmp_path / "r2" / "recall_vs_proposals_moved.png").stat().st_size > 0
    # the whole-image baseline moved by the same regressor: one detection per image at the moved image box
    from zoomrl.data.images import ImageStore, load_images
    from zoomrl.experiments.region_scoring import describe_boxes

    store, whole = ImageStore(), []
    for image in load_images([data / "test"], "test", "box", False, None, _quiet, False):
        pixels = store.get(image)
        box = np.array([[0.0, 0.0, 64.0, 64.0]])
        to = saved.refine(box, describe_boxes(image, pixels, box, TinyFeatures(), ACTIVE_VIEW), 64, 64)[0]
        gt = [{"box": list(b), "difficult": False} for b in image.boxes("box", include_difficult=False)]
        search = {"windows": [to.tolist()], "actions": [], "triggered": True, "box": to.tolist(), "score": 1.0}
        whole.append({"image_id": image.image_id, "ground_truth": gt, "searches": [search]})
    assert res["whole_image_moved"]["terminal_regions"]["ap_area"] == pytest.approx(evaluate(whole)["ap_area"])
    # the boxes themselves: moved_whole_image's detection of each image is the image box moved by hand above
    from zoomrl.experiments.active.test import TESTER

    recs = [{k: r[k] for k in ("image_id", "width", "height", "ground_truth")} for r in records]
    got = TESTER.moved_whole_image(recs, images_of(data), store, res_config(res), TinyFeatures(),
                                   run / "best.weights.h5")  # fmt: skip
    got_boxes = {r["image_id"]: r["searches"][0]["refined"][-1] for r in got}
    for w in whole:
        np.testing.assert_allclose(got_boxes[w["image_id"]], w["searches"][0]["box"], rtol=1e-5, atol=1e-4)
        assert w["searches"][0]["box"] != [0.0, 0.0, 64.0, 64.0]


def test_a_hierarchical_run_moves_its_windows_as_they_are(data, tmp_path):
    from zoomrl.experiments.hierarchical.config import make_config as hierarchical_config
    from zoomrl.experiments.hierarchical.test import test
    from zoomrl.experiments.hierarchical.train import train
    from zoomrl.experiments.region_scoring import window_itself

    cfg = hierarchical_config("tiny", class_object="box", epochs=1, val_fraction=0.25, box_regression=True)
    train(cfg, [data / "train"], "trainval", tmp_path / "m", features=TinyFeatures(), log=_quiet, show_progress=False)
    run = tmp_path / "m" / "box"
    saved = BoxRegressor.load(run / "box_regressor.npz")
    np.testing.assert_allclose(_refit(data, run, cfg, window_itself).weights, saved.weights, rtol=1e-6, atol=1e-9)
    kw = dict(model_dir=tmp_path / "m", features=TinyFeatures(), log=_quiet, show_progress=False, baselines=False)
    res = test(hierarchical_config("tiny", class_object="box"), [data / "test"], "test", None, tmp_path / "r", **kw)
    assert res["config"]["box_regression"] is True and "unrefined_by_score" in res
    _check_test_records(data, tmp_path / "r", saved, window_itself)


def test_the_option_is_a_training_flag_refused_with_pixels():
    from zoomrl.experiments.active.cli import build_parser, make_run_config
    from zoomrl.experiments.hierarchical.cli import build_parser as hierarchical_parser
    from zoomrl.experiments.hierarchical.cli import make_run_config as hierarchical_run_config

    assert make_config("fast_roi").box_regression is True and make_config("fast").box_regression is False
    with pytest.raises(ConfigError, match="box_regression needs box descriptors"):
        make_config("tiny", features="scratch", box_regression=True)
    assert make_run_config(build_parser("train").parse_args(["--box-regression"])).box_regression is True
    assert make_run_config(build_parser("train").parse_args([])).box_regression is False
    args = hierarchical_parser("train").parse_args(["--box-regression"])
    assert hierarchical_run_config(args).box_regression is True


def test_a_resumed_run_reads_its_regressor_or_fits_the_same_one(data, tmp_path):
    from zoomrl.experiments.active.train import train

    cfg = make_config("tiny", class_object="box", epochs=1, val_fraction=0.25, box_regression=True)
    kw = dict(features=TinyFeatures(), log=_quiet, show_progress=False)
    train(cfg, [data / "train"], "trainval", tmp_path / "m", **kw)
    path = tmp_path / "m" / "box" / "box_regressor.npz"
    first = BoxRegressor.load(path)
    path.unlink()
    train(cfg.replace(epochs=2), [data / "train"], "trainval", tmp_path / "m", resume=True, **kw)
    np.testing.assert_array_equal(BoxRegressor.load(path).weights, first.weights)


def test_moves_stay_within_the_range_of_the_training_targets(tmp_path):
    # Two boxes a known move from their object: dx = +0.25 and -0.1, the width's log-ratio log(50/40) and
    # log(50/62.5); the heights fit. A third descriptor far past both is clamped to the largest of each training delta.
    objects = np.array([[40.0, 40.0, 90.0, 90.0]] * 2)
    boxes = np.array([[35.0, 40.0, 75.0, 90.0], [40.0, 40.0, 102.5, 90.0]])  # widths 40 and 62.5
    ious = np.diag(iou_matrix(boxes, objects))
    x = np.array([[1.0], [-1.0]])
    reg = fit_box_regressor(x, ious, boxes, objects, alpha=1e-9, min_iou=0.5)
    want = box_deltas(boxes, objects)
    np.testing.assert_allclose(want, [[0.25, 0, np.log(1.25), 0], [-0.1, 0, np.log(0.8), 0]], atol=1e-12)
    np.testing.assert_allclose(reg.low, [-0.1, 0, np.log(0.8), 0], atol=1e-12)
    np.testing.assert_allclose(reg.high, [0.25, 0, np.log(1.25), 0], atol=1e-12)
    np.testing.assert_allclose(reg.deltas(x), want, atol=1e-6)  # inside the range: the fit itself
    np.testing.assert_allclose(reg.deltas(np.array([[5.0], [-5.0]])), want, atol=1e-6)  # far out: clamped
    free = fit_box_regressor(x, ious, boxes, objects, alpha=1e-9, min_iou=0.5, clamp=False)
    assert free.deltas(np.array([[5.0]]))[0, 0] > 0.5  # unclamped, the line goes on
    path = tmp_path / "box_regressor.npz"
    reg.save(path)
    back = BoxRegressor.load(path)
    np.testing.assert_array_equal(back.low, reg.low)
    np.testing.assert_array_equal(back.high, reg.high)
    free.save(path)  # a file without the bounds (written before the clamp) moves as it did
    assert BoxRegressor.load(path).low is None
    arrays = dict(np.load(path)) | {"low": reg.low}  # one bound without the other
    np.savez(tmp_path / "half.npz", **arrays)
    with pytest.raises(FileDamagedError, match="optionally low and high"):
        BoxRegressor.load(tmp_path / "half.npz")


def refined_ious_of(data, cfg):
    """The refined IoUs of the boxes sampled on the training images of a run of ``cfg`` (its validation split)."""
    from zoomrl.data.images import ImageStore, load_images
    from zoomrl.experiments.dqn_trainee import split_validation
    from zoomrl.experiments.region_scoring import refined_ious, region_samples

    images = load_images([data / "train"], "trainval", "box", False, None, _quiet, progress=False)
    train_images, _ = split_validation(images, cfg.val_fraction, cfg.seed)
    return refined_ious(region_samples(train_images, ImageStore(), TinyFeatures(), "box", cfg.seed, ACTIVE_VIEW))


def test_the_choice_script_adds_a_row_per_regressor(data, tmp_path, monkeypatch):
    """scripts/region_scorer_choice.py --box-alphas: one more row per (min IoU, alpha), the default classifier with
    that regressor; the run's own models (the defaults) give the same AAR AP as their row."""
    import sys

    from conftest import REPO
    from zoomrl.agents.box_regressor import ALPHA, MIN_IOU
    from zoomrl.agents.dqn.agent import agent_outputs
    from zoomrl.agents.dqn.checkpoint import load_weights_checked
    from zoomrl.agents.region_scorer import RegionScorer
    from zoomrl.data.images import ImageStore, load_images
    from zoomrl.envs.active import TRIGGER
    from zoomrl.envs.active_runs import run_records, test_policy
    from zoomrl.eval.proposals import attended_by_score
    from zoomrl.experiments.active.train import ActiveTrainee, train
    from zoomrl.experiments.dqn_trainee import split_validation
    from zoomrl.experiments.region_scoring import score_records

    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import region_scorer_choice
    finally:
        sys.path.pop(0)
    cfg = make_config("tiny", class_object="box", epochs=1, val_fraction=0.25, region_scorer=True, box_regression=True)
    train(cfg, [data / "train"], "trainval", tmp_path / "m", features=TinyFeatures(), log=_quiet, show_progress=False)
    run = tmp_path / "m" / "box"
    kw = dict(features=TinyFeatures(), log=_quiet, box_alphas=[1.0, ALPHA], box_min_ious=[MIN_IOU],
              clamps=[False, True], labels=["window", "refined"])  # fmt: skip
    import zoomrl.agents.box_regressor as box_module

    fitted, fit = [], box_module.fit_box_regressor
    monkeypatch.setattr(box_module, "fit_box_regressor", lambda *a, **k: fitted.append(fit(*a, **k)) or fitted[-1])
    result = region_scorer_choice.compare(run, [str(data / "train")], "trainval", [0.5], [1e-5], **kw)
    monkeypatch.undo()
    assert [r.low is not None for r in fitted] == [True, True, False, True]  # the alphas' rows, then the clamps'
    assert [r["positives"] for r in result["rows"][3:5]] == [
        RegionScorer.load(run / "region_scorer.npz").n_positives, int((refined_ious_of(data, cfg) >= 0.5).sum())
    ]  # fmt: skip
    assert [r.get("box_alpha") for r in result["rows"]] == [None, 1.0, ALPHA, None, None, None, None]
    assert [(r["clamp"], r["region_labels"]) for r in result["rows"][3:]] == [
        (False, "window"), (False, "refined"), (True, "window"), (True, "refined")
    ]  # fmt: skip
    images = load_images([data / "train"], "trainval", "box", False, None, _quiet, progress=False)
    _, val = split_validation(images, cfg.val_fraction, cfg.seed)
    features, agent, size = ActiveTrainee.build(cfg, TinyFeatures(), _quiet)
    load_weights_checked(run / "best.weights.h5", agent, ActiveTrainee.run_meta(cfg, size))
    store = ImageStore()
    records = run_records(val, store, cfg, test_policy(cfg), cfg.test_batch, features, agent_outputs(agent))
    models = RegionScorer.load(run / "region_scorer.npz"), BoxRegressor.load(run / "box_regressor.npz")
    score_records(records, val, store, features, models[0], ACTIVE_VIEW, models[1])
    own = attended_by_score(records, TRIGGER, cfg.aar_nms, ["region_score"])["region_score"]["ap_area"]
    assert result["rows"][2]["aar_ap"] == pytest.approx(own)
    assert result["rows"][5]["aar_ap"] == pytest.approx(own)  # the defaults: clamped, window labels
    # the refined labels' classifier scores the same boxes as one fitted on refined_ious
    from zoomrl.agents.region_scorer import fit_region_scorer
    from zoomrl.experiments.region_scoring import refined_ious, region_samples

    train_images, _ = split_validation(images, cfg.val_fraction, cfg.seed)
    samples = region_samples(train_images, store, TinyFeatures(), "box", cfg.seed, ACTIVE_VIEW)
    refined = fit_region_scorer(samples.descriptors, refined_ious(samples), seed=cfg.seed)
    again = score_records(copy.deepcopy(records), val, store, features, refined, ACTIVE_VIEW, models[1])
    want = attended_by_score(again, TRIGGER, cfg.aar_nms, ["region_score"])["region_score"]["ap_area"]
    assert result["rows"][6]["aar_ap"] == pytest.approx(want)


def test_the_check_script_moves_the_validation_boxes(data):
    """scripts/box_regression_check.py: a row per (min IoU, alpha); each band's boxes counted and judged before by
    their own IoU, after by the regressor fitted on the training images' boxes; a preset without a validation
    split is one line, exit code 2."""
    import subprocess
    import sys

    from conftest import REPO
    from zoomrl.data.images import ImageStore, load_images
    from zoomrl.experiments.dqn_trainee import split_validation
    from zoomrl.experiments.region_scoring import region_samples

    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import box_regression_check
    finally:
        sys.path.pop(0)
    kw = dict(features=TinyFeatures(), log=_quiet, val_fraction=0.25)
    result = box_regression_check.check("active", "tiny", [str(data / "train")], "box", [0.5], [1.0, 10.0], **kw)
    assert [(r["min_iou"], r["alpha"]) for r in result["rows"]] == [(0.5, 1.0), (0.5, 10.0)]
    images = load_images([data / "train"], "trainval", "box", False, None, _quiet, progress=False)
    train, val = split_validation(images, 0.25, 0)
    assert result["images"] == [im.image_id for im in val]
    store = ImageStore()
    fit = region_samples(train, store, TinyFeatures(), "box", 0, ACTIVE_VIEW)
    held = region_samples(val, store, TinyFeatures(), "box", 1, ACTIVE_VIEW)
    moved = fit_box_regressor(*fit[:4], alpha=10.0).refine(held.boxes, held.descriptors, 10**9, 10**9)
    after = np.diag(iou_matrix(moved, held.objects))
    near = (held.ious >= 0.3) & (held.ious < 0.5)
    band = result["rows"][1]["bands"][0]
    assert band["n"] == int(near.sum()) > 0 and band["hits_before"] == 0.0
    assert band["hits_after"] == pytest.approx((after[near] >= 0.5).mean())
    assert band["iou_after"] == pytest.approx(after[near].mean())
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "box_regression_check.py"), "--family", "active",
                          "--preset", "tiny", "--data", str(data / "train"), "--class-object", "box"],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 2 and "no validation split" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_validation_weighs_the_moved_windows(data, tmp_path, monkeypatch):
    """Validation hands the run's regressor to score_records, and each validated epoch's APs are those of the
    records it moved (the terminal regions and the attended ones)."""
    from zoomrl.envs.active import TRIGGER
    from zoomrl.eval.detection import ap_by_score
    from zoomrl.eval.proposals import attended_by_score
    from zoomrl.experiments import region_scoring
    from zoomrl.experiments.active.train import train

    seen = []
    real = region_scoring.score_records

    def spy(records, images, store, features, scorer, view, regressor=None):
        out = real(records, images, store, features, scorer, view, regressor)
        seen.append((regressor, out))
        return out

    monkeypatch.setattr(region_scoring, "score_records", spy)
    cfg = make_config("tiny", class_object="box", epochs=2, val_fraction=0.25, box_regression=True)
    train(cfg, [data / "train"], "trainval", tmp_path / "m", features=TinyFeatures(), log=_quiet, show_progress=False)
    run = tmp_path / "m" / "box"
    epochs = json.loads((run / "validation.json").read_text())["epochs"]
    assert len(seen) == len(epochs) == 2
    saved = BoxRegressor.load(run / "box_regressor.npz")
    for (regressor, records), epoch in zip(seen, epochs):
        np.testing.assert_array_equal(regressor.weights, saved.weights)
        assert all("refined" in s for r in records for s in r["searches"] if s["windows"])
        assert epoch["ap_by_score"] == pytest.approx(ap_by_score(records))
        aar = {k: v["ap_area"] for k, v in attended_by_score(records, TRIGGER, cfg.aar_nms).items()}
        assert epoch["aar_ap_by_score"] == pytest.approx(aar)


def test_the_bounds_script_gives_an_old_regressor_the_bounds_of_todays_fit(data, tmp_path):
    """scripts/regressor_bounds.py: a regressor saved without bounds (before the clamp) gets those that fitting it
    today stores, in a new folder of links; the run folder is untouched; other images are refused."""
    import sys

    from conftest import REPO
    from zoomrl.experiments.active.train import train

    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import regressor_bounds
    finally:
        sys.path.pop(0)
    cfg = make_config("tiny", class_object="box", epochs=1, val_fraction=0.25, box_regression=True)
    train(cfg, [data / "train"], "trainval", tmp_path / "m", features=TinyFeatures(), log=_quiet, show_progress=False)
    run = tmp_path / "m" / "box"
    today = BoxRegressor.load(run / "box_regressor.npz")
    assert today.low is not None and (today.low < today.high).all()
    old = BoxRegressor(today.mean, today.scale, today.weights, today.bias, today.n_examples)
    old.save(run / "box_regressor.npz")  # as written before the clamp
    result = regressor_bounds.bounds(run, [str(data / "train")], "trainval", tmp_path / "out")
    back = BoxRegressor.load(tmp_path / "out" / "box_regressor.npz")
    np.testing.assert_array_equal(back.low, today.low)
    np.testing.assert_array_equal(back.high, today.high)
    np.testing.assert_array_equal(back.weights, today.weights)
    assert result["boxes"] == today.n_examples
    assert BoxRegressor.load(run / "box_regressor.npz").low is None  # the run folder is not touched
    assert (tmp_path / "out" / "config.json").is_symlink() and (tmp_path / "out" / "best.weights.h5").exists()
    with pytest.raises(ValueError, match="expected the run's own --data"):
        regressor_bounds.bounds(run, [str(data / "test")], "test", tmp_path / "out2")
