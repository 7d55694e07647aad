"""Box voting over the attended boxes (``aar_vote``, Gidaris and Komodakis 2015): the voted boxes worked out by
hand, a near miss that the vote turns into a hit, the option's config and flag, and a run that votes in its
validation and its test."""

import json
import math

import numpy as np
import pytest

from conftest import TinyFeatures
from zoomrl.core.config import ConfigError
from zoomrl.envs.active import DOWN, TRIGGER
from zoomrl.eval.detection import evaluate
from zoomrl.eval.proposals import attended_by_budget, attended_by_score, attended_records, box_vote
from zoomrl.experiments.active.config import PRESETS, make_config


def _quiet(_):
    pass


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# A and B overlap at IoU 9000 / 11000 = 0.818; C is far from both.
A, B, C = [0, 0, 100, 100], [10, 0, 110, 100], [300, 300, 400, 400]


def test_each_kept_box_becomes_the_weighted_mean_of_its_neighbours():
    boxes = np.array([A, B, C], dtype=float)
    scores = np.array([0.0, math.log(3.0), 5.0])  # weights 1/2, 3/4, and C's
    # B kept (A suppressed): (1/2 A + 3/4 B) / (5/4) = [6, 0, 106, 100]; C votes alone and stays
    np.testing.assert_allclose(box_vote(boxes, scores, [1, 2], 0.5), [[6, 0, 106, 100], C])
    # a threshold above their IoU: B votes alone
    np.testing.assert_allclose(box_vote(boxes, scores, [1, 2], 0.9), [B, C])
    # no voting: the kept boxes, in the order given
    np.testing.assert_allclose(box_vote(boxes, scores, [2, 0], 0.0), [C, A])
    assert box_vote(boxes, scores, [], 0.5).shape == (0, 4)
    # the weight rises with the score: a higher score for A pulls B's vote towards A
    pulled = box_vote(boxes, np.array([3.0, math.log(3.0), 5.0]), [1], 0.5)[0]
    w = sigmoid(3.0)
    np.testing.assert_allclose(pulled, (w * np.array(A) + 0.75 * np.array(B)) / (w + 0.75))


def _near_miss_records() -> list[dict]:
    """One object ``[0, 0, 100, 100]``; the agent attends K ``[0, 0, 100, 220]`` (IoU 100/220 = 0.455, a miss;
    region score 1.0) and L, the object's own box (region score 0.0). K and L overlap at 0.455 too: suppression at
    0.3 keeps K alone."""
    K, L = [0, 0, 100, 220], [0, 0, 100, 100]
    search = {"windows": [K, L], "actions": [DOWN, TRIGGER], "q_values": [[0.0] * 9, [0.0] * 9],
              "region_score": [1.0, 0.0], "triggered": True, "box": L, "score": None, "steps": 2}  # fmt: skip
    return [{"image_id": "a", "ground_truth": [{"box": [0, 0, 100, 100], "difficult": False}], "searches": [search]}]


def test_the_vote_turns_a_near_miss_into_a_hit():
    recs = _near_miss_records()
    plain = attended_records(recs, TRIGGER, 0.3, "region_score")
    assert [s["box"] for s in plain[0]["searches"]] == [[0.0, 0.0, 100.0, 220.0]]
    assert evaluate(plain)["ap_area"] == 0.0
    voted = attended_records(recs, TRIGGER, 0.3, "region_score", vote_iou=0.4)
    (search,) = voted[0]["searches"]
    w = sigmoid(1.0)
    y2 = (w * 220 + 0.5 * 100) / (w + 0.5)  # 171.3: IoU 100 / 171.3 = 0.58 with the object
    assert search["box"] == pytest.approx([0, 0, 100, y2]) and search["windows"] == [search["box"]]
    assert search["score"] == 1.0  # the kept box's own score
    assert evaluate(voted)["ap_area"] == pytest.approx(1.0)
    # at 0.5 L does not vote for K (0.455): still a miss
    assert attended_by_score(recs, TRIGGER, 0.3, ["region_score"], 0.5)["region_score"]["ap_area"] == 0.0
    assert attended_by_score(recs, TRIGGER, 0.3, ["region_score"], 0.4)["region_score"]["ap_area"] == 1.0
    # the test's AAR within a budget of boxes suppresses and votes as the full set
    from zoomrl.experiments.active.test import ActiveTester

    cfg = make_config("tiny", aar_score="region_score", aar_vote=0.4)
    assert {n: v["ap_area"] for n, v in ActiveTester.aar_by_budget(recs, cfg).items()} == pytest.approx(
        {"5": 1.0, "10": 1.0, "20": 1.0, "50": 1.0}
    )


def test_a_budget_keeps_each_images_first_boxes_in_visit_order():
    """One object; the agent visits a miss M (score 2.0) and then, in its next search, the hit H (score 1.0). With
    one box per image only M is reported (AP 0); with two, M ranks first and H second (precision 1/2 at recall 1:
    AP 1/2)."""
    M, H = [50, 50, 60, 60], [0, 0, 10, 10]
    searches = [
        {"windows": [M], "actions": [DOWN], "q_values": [[0.0] * 9], "region_score": [2.0]},
        {"windows": [H], "actions": [DOWN], "q_values": [[0.0] * 9], "region_score": [1.0]},
    ]
    recs = [{"image_id": "a", "ground_truth": [{"box": H, "difficult": False}], "searches": searches}]
    one = attended_records(recs, TRIGGER, 0.3, "region_score", max_boxes=1)
    assert [s["box"] for s in one[0]["searches"]] == [[50.0, 50.0, 60.0, 60.0]] and one[0]["windows_analysed"] == 1
    assert attended_records(recs, TRIGGER, 0.3, "region_score", max_boxes=0) == attended_records(
        recs, TRIGGER, 0.3, "region_score"
    )
    got = attended_by_budget(recs, TRIGGER, 0.3, "region_score", budgets=(1, 2, 5))
    assert {n: ev["ap_area"] for n, ev in got.items()} == pytest.approx({"1": 0.0, "2": 0.5, "5": 0.5})


def test_the_option_its_preset_and_its_flag():
    from zoomrl.experiments.active.cli import build_parser, make_run_config

    assert make_config("paper").aar_vote == 0.0 and make_config("fast").aar_vote == 0.0
    assert make_config("fast_roi").aar_vote == 0.5 == PRESETS["fast_roi"]["aar_vote"]
    with pytest.raises(ConfigError, match="aar_vote"):
        make_config("tiny", aar_vote=1.5)
    for command in ("train", "test"):
        args = build_parser(command).parse_args(["--preset", "tiny", "--aar-vote", "0.4"])
        assert make_run_config(args).aar_vote == 0.4
    assert make_run_config(build_parser("test").parse_args(["--preset", "fast_roi"])).aar_vote == 0.5


def test_a_run_votes_in_its_validation_and_its_test(square_voc, tmp_path, monkeypatch):
    """Every AAR evaluation of a run (each validated epoch's, and the test's under every score, with and without
    the regressor's move) votes at the run's ``aar_vote``; the test's AAR is the vote of its own records."""
    import zoomrl.eval.proposals as proposals
    import zoomrl.experiments.active.test as active_test
    from zoomrl.experiments.active.test import test
    from zoomrl.experiments.active.train import train

    votes: list[float] = []
    real = proposals.attended_by_score

    def spy(*args, **kwargs):
        votes.append(kwargs.get("vote_iou", args[4] if len(args) > 4 else 0.0))
        return real(*args, **kwargs)

    monkeypatch.setattr(proposals, "attended_by_score", spy)
    monkeypatch.setattr(active_test, "attended_by_score", spy)
    cfg = make_config(
        "tiny", class_object="box", epochs=2, val_fraction=0.25, region_scorer=True, box_regression=True, aar_vote=0.3
    )
    train(cfg, [square_voc / "train"], "trainval", tmp_path / "m", features=TinyFeatures(), log=_quiet,
          show_progress=False)  # fmt: skip
    assert len(votes) >= 2 and set(votes) == {0.3}  # one per validated epoch
    votes.clear()
    kw = dict(model_dir=tmp_path / "m", features=TinyFeatures(), log=_quiet, show_progress=False)
    test_cfg = make_config("tiny", class_object="box", aar_score="region_score", aar_vote=0.7)
    res = test(test_cfg, [square_voc / "test"], "test", None, tmp_path / "r", **kw)
    assert votes and set(votes) == {0.7} and res["config"]["aar_vote"] == 0.7
    records = json.loads((tmp_path / "r" / "detections.json").read_text())["images"]
    want = evaluate(attended_records(records, TRIGGER, cfg.aar_nms, "region_score", 0.7))
    assert res["agent"]["all_attended_regions"]["ap_area"] == pytest.approx(want["ap_area"])
    assert res["agent"]["all_attended_regions"]["scores"] == pytest.approx(want["scores"])
    budgets = attended_by_budget(records, TRIGGER, cfg.aar_nms, "region_score", 0.7)
    assert {n: v["ap_area"] for n, v in res["agent"]["aar_by_budget"].items()} == pytest.approx(
        {n: ev["ap_area"] for n, ev in budgets.items()}
    )
    assert res["agent"]["aar_by_budget"]["50"]["ap_area"] == pytest.approx(want["ap_area"])  # 10 test steps < 50
    # the random agent's boxes scored by the same classifier, moved by the same regressor, suppressed and voted as
    # the agent's: re-run here by hand
    from zoomrl.agents.box_regressor import BoxRegressor
    from zoomrl.agents.region_scorer import RegionScorer
    from zoomrl.data.images import ImageStore, load_images
    from zoomrl.envs.active import context_window
    from zoomrl.envs.active_runs import run_records
    from zoomrl.envs.oracles import random_policy, score_random
    from zoomrl.experiments.active.config import Config
    from zoomrl.experiments.region_scoring import score_records

    run = tmp_path / "m" / "box"
    tested = Config.from_dict(res["config"])
    images = load_images([square_voc / "test"], "test", "box", False, None, _quiet, False)
    store = ImageStore()
    rand = run_records(images, store, tested, random_policy(tested.seed, tested.num_actions), tested.test_batch)
    score_random(rand, tested.seed)
    models = RegionScorer.load(run / "region_scorer.npz"), BoxRegressor.load(run / "box_regressor.npz")
    view = lambda w, width, height: context_window(w, width, height, tested.context)  # noqa: E731 (R-CNN's context)
    score_records(rand, images, store, TinyFeatures(), models[0], view, models[1])
    want = evaluate(attended_records(rand, TRIGGER, tested.aar_nms, "region_score", 0.7))
    assert res["random"]["all_attended_regions"]["scores"] == pytest.approx(want["scores"])
    assert res["random"]["all_attended_regions"]["ap_area"] == pytest.approx(want["ap_area"])
    budgets = attended_by_budget(rand, TRIGGER, tested.aar_nms, "region_score", 0.7)
    assert {n: v["ap_area"] for n, v in res["random"]["aar_by_budget"].items()} == pytest.approx(
        {n: ev["ap_area"] for n, ev in budgets.items()}
    )
    assert set(votes) == {0.7}
