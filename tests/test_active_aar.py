"""All attended regions (AAR) under another score than the trigger's Q-value (``aar_score``), and the IoU head in the
active family (``iou_weight``): hand-built records whose boxes each score ranks differently, with the APs worked
out by hand; ``aar_score: auto`` choosing on the validation images; the head trained end to end, its target
``info["iou"]`` checked against the geometry."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import TinyFeatures
from zoomrl.core.config import ConfigError
from zoomrl.core.geometry import iou_matrix
from zoomrl.envs.active import DOWN, LEFT, RIGHT, TRIGGER, ActiveEnv
from zoomrl.eval.proposals import ATTENDED_SCORES, attended_by_score, attended_records, attended_scores
from zoomrl.experiments.active.config import AAR_SCORES, make_config


def _quiet(_):
    pass


def q(trigger: float, best_other: float) -> list[float]:
    """Q-values of the 9 actions: ``trigger`` for the trigger, ``best_other`` the best of the others."""
    return [best_other] + [-10.0] * 7 + [trigger]


A, B, C = [0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]  # image a: A covers its object, B and C miss
D, E = [0, 0, 20, 20], [30, 30, 40, 40]  # image b: D covers its object, E misses


def records(predicted: bool = True, region: bool = True) -> list[dict]:
    """Two images, one object each, five attended boxes. Per box: (trigger Q, best other Q -> margin, predicted
    IoU, region score): A (1.0, 0.9 -> 0.1, 0.9, 2.0) hit; B (3.0, 5.0 -> -2.0, 0.2, -1.0); C (2.0, 1.0 -> 1.0,
    0.1, 3.0); D (0.5, 0.0 -> 0.5, 0.6, 1.5) hit; E (0.8, 2.0 -> -1.2, 0.7, 2.5). The triggered boxes (C, E) both
    miss."""
    gt = [{"box": [0, 0, 10, 10], "difficult": False}]
    a = [
        {"windows": [A, B], "actions": [RIGHT, DOWN], "q_values": [q(1.0, 0.9), q(3.0, 5.0)], "triggered": False},
        {"windows": [C], "actions": [TRIGGER], "q_values": [q(2.0, 1.0)], "triggered": True},
    ]
    b = [{"windows": [D, E], "actions": [LEFT, TRIGGER], "q_values": [q(0.5, 0.0), q(0.8, 2.0)], "triggered": True}]
    if predicted:
        a[0]["predicted_iou"], a[1]["predicted_iou"], b[0]["predicted_iou"] = [0.9, 0.2], [0.1], [0.6, 0.7]
    if region:
        a[0]["region_score"], a[1]["region_score"], b[0]["region_score"] = [2.0, -1.0], [3.0], [1.5, 2.5]
    for s in a + b:
        s.update(box=s["windows"][-1] if s["triggered"] else None, score=None, steps=len(s["actions"]))
    return [
        {"image_id": "a", "ground_truth": gt, "searches": a},
        {"image_id": "b", "ground_truth": [{"box": [0, 0, 20, 20], "difficult": False}], "searches": b},
    ]


# Two positives. Ranked (T: a hit, F: a miss), with the precision at each hit:
#   trigger_q          B 3.0 F, C 2.0 F, A 1.0 T (1/3), E 0.8 F, D 0.5 T (2/5)
#   trigger_advantage  C 1.0 F, D 0.5 T (1/2), A 0.1 T (2/3), E -1.2 F, B -2.0 F
#   predicted_iou      A 0.9 T (1), E 0.7 F, D 0.6 T (2/3), B 0.2 F, C 0.1 F
#   region_score       C 3.0 F, E 2.5 F, A 2.0 T (1/3), D 1.5 T (2/4), B -1.0 F
# AP (area): the interpolated precision (the best at this recall or beyond) over recall 0.5 and 1.0:
#   trigger_q 0.5 * 2/5 + 0.5 * 2/5; trigger_advantage 0.5 * 2/3 + 0.5 * 2/3; predicted_iou 0.5 * 1 + 0.5 * 2/3;
#   region_score 0.5 * 1/2 + 0.5 * 1/2.
# AP (VOC07): thresholds 0.0 .. 0.5 (6 of 11) take the first value, 0.6 .. 1.0 (5 of 11) the second.
BY_HAND_AREA = {"trigger_q": 0.4, "trigger_advantage": 2 / 3, "predicted_iou": 5 / 6, "region_score": 0.5}
BY_HAND_VOC07 = {
    "trigger_q": 0.4,
    "trigger_advantage": 2 / 3,
    "predicted_iou": (6 * 1 + 5 * 2 / 3) / 11,
    "region_score": 0.5,
}


def test_each_attended_box_score_gives_its_ap_by_hand():
    got = attended_by_score(records(), TRIGGER, 0.3)  # the boxes of an image do not overlap: no suppression
    assert list(got) == list(ATTENDED_SCORES)
    for name, ev in got.items():
        assert ev["ap_area"] == pytest.approx(BY_HAND_AREA[name]), name
        assert ev["ap_voc07"] == pytest.approx(BY_HAND_VOC07[name]), name
        assert (ev["n_detections"], ev["n_true_positives"], ev["n_positives"]) == (5, 2, 2)
    # the boxes' scores themselves, ranked
    want = {
        "trigger_q": [3.0, 2.0, 1.0, 0.8, 0.5],
        "trigger_advantage": [1.0, 0.5, 0.1, -1.2, -2.0],
        "predicted_iou": [0.9, 0.7, 0.6, 0.2, 0.1],
        "region_score": [3.0, 2.5, 2.0, 1.5, -1.0],
    }
    for name, scores in want.items():
        assert got[name]["scores"] == pytest.approx(scores), name
    # the default is the trigger's Q-value, as before the option
    default = attended_records(records(), TRIGGER, 0.3)
    assert default == attended_records(records(), TRIGGER, 0.3, "trigger_q")
    assert [s["score"] for r in default for s in r["searches"]] == [1.0, 3.0, 2.0, 0.5, 0.8]
    # a score function of eval.detection's kind may be passed in place of its name
    from zoomrl.eval.detection import DETECTION_SCORES

    by_fn = attended_records(records(), TRIGGER, 0.3, DETECTION_SCORES["predicted_iou"])
    assert by_fn == attended_records(records(), TRIGGER, 0.3, "predicted_iou")


def test_suppression_keeps_the_box_the_score_puts_first():
    """Two overlapping boxes (IoU 100/220 > 0.3) on one object: the hit P and a taller miss Q. The trigger's
    Q-value puts Q first, so Q suppresses P (AP 0); the margin puts P first (AP 1); without suppression both stay
    (AP 1/2 when the miss ranks first)."""
    P, Q = [0, 0, 10, 10], [0, 0, 10, 22]
    search = {
        "windows": [P, Q],
        "actions": [DOWN, TRIGGER],
        "q_values": [q(1.0, 0.0), q(2.0, 5.0)],
        "predicted_iou": [0.2, 0.8],
        "triggered": True,
        "box": Q,
        "score": None,
        "steps": 2,
    }
    recs = [{"image_id": "c", "ground_truth": [{"box": [0, 0, 10, 10], "difficult": False}], "searches": [search]}]
    aps = {k: ev["ap_area"] for k, ev in attended_by_score(recs, TRIGGER, 0.3).items()}
    assert aps == pytest.approx({"trigger_q": 0.0, "trigger_advantage": 1.0, "predicted_iou": 0.0})
    aps = {k: ev["ap_area"] for k, ev in attended_by_score(recs, TRIGGER, 0.0).items()}
    assert aps == pytest.approx({"trigger_q": 0.5, "trigger_advantage": 1.0, "predicted_iou": 0.5})


def test_results_hold_the_chosen_aar_and_every_scores(tmp_path):
    """The test's results: ``all_attended_regions`` under ``aar_score``, ``aar_by_score`` beside it; a network
    without the IoU head cannot be scored by ``predicted_iou`` (one clear error)."""
    from zoomrl.experiments.active.test import TESTER

    checkpoint = tmp_path / "epoch_1.weights.h5"
    for name in ATTENDED_SCORES:
        cfg = make_config("tiny", class_object="box", aar_score=name)
        used, _, res = TESTER.agent_results(records(), cfg, checkpoint, _quiet)
        assert used.aar_score == res["aar_score"] == name
        assert res["agent"]["all_attended_regions"]["ap_area"] == pytest.approx(BY_HAND_AREA[name])
        assert {k: v["ap_area"] for k, v in res["aar_by_score"].items()} == pytest.approx(BY_HAND_AREA)
        assert {k: v["ap_voc07"] for k, v in res["aar_by_score"].items()} == pytest.approx(BY_HAND_VOC07)
        assert list(res["agent"]) == [
            "terminal_regions",
            "all_attended_regions",
            "recall_vs_proposals",
            "aar_by_budget",
        ]
        # at most 3 boxes per image here: every budget (5 and up) holds them all
        assert {n: v["ap_area"] for n, v in res["agent"]["aar_by_budget"].items()} == pytest.approx(
            {n: BY_HAND_AREA[name] for n in ("5", "10", "20", "50")}
        )
        assert res["score"] == "trigger_q" and res["agent"]["terminal_regions"]["ap_area"] == 0.0  # C, E miss
    plain = records(predicted=False, region=False)
    assert attended_scores(plain, TRIGGER) == ["trigger_q", "trigger_advantage"]
    with pytest.raises(ValueError, match="predicted_iou needs a network trained with --iou-weight"):
        TESTER.agent_results(plain, make_config("tiny", aar_score="predicted_iou"), checkpoint, _quiet)
    # auto without a validation record: said, and the margin (as --score auto)
    logs: list[str] = []
    used, _, res = TESTER.agent_results(plain, make_config("tiny", aar_score="auto"), checkpoint, logs.append)
    assert res["aar_score"] == "trigger_advantage" and any("--aar-score auto" in m for m in logs)


def test_the_option_is_checked_and_a_test_time_flag():
    from zoomrl.experiments.active.cli import build_parser, make_run_config
    from zoomrl.experiments.active.config import RESULT_FIELDS, TEST_FIELDS

    assert AAR_SCORES == (*ATTENDED_SCORES, "auto") and make_config("fast_roi").aar_score == "auto"
    with pytest.raises(ConfigError, match="aar_score"):
        make_config("tiny", aar_score="trigger_order")
    assert "aar_score" in TEST_FIELDS and "aar_score" not in RESULT_FIELDS  # may change between train and test
    c = make_run_config(build_parser("test").parse_args(["--preset", "fast_roi", "--aar-score", "auto"]))
    assert c.aar_score == "auto"
    c = make_run_config(build_parser("train").parse_args(["--preset", "fast_roi", "--iou-weight", "0.5"]))
    assert c.iou_weight == 0.5 and c.features == "roi"
    with pytest.raises(SystemExit):
        build_parser("test").parse_args(["--aar-score", "trigger_order"])
    # the scratch CNN has no IoU head: said when the configuration is made, not deep in the network's build
    with pytest.raises(ConfigError, match="scratch"):
        make_config("tiny", features="scratch", iou_weight=1.0)


def test_the_test_policy_never_takes_the_predicted_iou_column():
    from zoomrl.envs.active_runs import greedy_policy, revisit_free_greedy_policy, test_policy

    row = np.array([[0.1] * 8 + [0.2, 0.95]])  # 9 Q-values, then the predicted IoU, the largest value
    infos = [{"revisit_actions": ()}]
    for avoid in (False, True):
        policy = test_policy(make_config("tiny", iou_weight=1.0, avoid_revisits=avoid))
        assert policy(np.arange(1), row, infos).tolist() == [TRIGGER], avoid
    assert test_policy(make_config("tiny")) is greedy_policy  # without the head: the plain policies, as before
    assert test_policy(make_config("tiny", avoid_revisits=True)) is revisit_free_greedy_policy


def test_the_iou_head_target_is_the_best_iou_with_a_remaining_object():
    """``info["iou"]``, which the stored transitions carry: the IoU of the state's box with the remaining object
    (not difficult, not found yet) of highest IoU, i.e. the search's target. The oracle finds the large object
    at once (IoU 0.77 with the whole image); in the second search it is no longer counted, though it overlaps the
    first boxes of that search more than the small object inside it does."""
    from zoomrl.agents.dqn.agent import DQNAgent
    from zoomrl.envs.vector import ZoomVectorEnv, run_vector
    from zoomrl.experiments.dqn_loop import store_transitions

    image = np.full((64, 64, 3), 20, np.uint8)
    gt = np.array([[0, 0, 56, 56], [8, 8, 40, 40]], float)
    features = TinyFeatures()
    env = ActiveEnv(image, gt, features=features, max_steps=40, index=0)
    cfg = make_config("tiny", hidden_units=16, demo_ratio=1.0, iou_weight=1.0)
    agent = DQNAgent(features.descriptor_size + 90, 9, cfg)
    oracle = lambda idx, q, infos: np.array([i["oracle_action"] for i in infos])  # noqa: E731
    run_vector(ZoomVectorEnv([env], features), oracle, None, store_transitions(agent, True, "demo"))
    first, second = env.episode.searches
    assert first.actions == [TRIGGER] and env.episode.found[0] and len(second.windows) >= 3
    want_first = iou_matrix(np.array(first.windows), gt).max(axis=1)
    want_second = iou_matrix(np.array(second.windows), gt[1:])[:, 0]  # the large object was found
    assert (iou_matrix(np.array(second.windows[:3]), gt[:1])[:, 0] > want_second[:3]).all()  # it would count more
    n = len(first.windows) + len(second.windows)
    assert len(agent.demos) == n
    np.testing.assert_allclose(agent.demos.ious[:n], np.concatenate([want_first, want_second]), rtol=1e-6)


@pytest.fixture(scope="module")
def data(square_voc):
    return square_voc


def train(cfg, data, tmp_path):
    from zoomrl.experiments.active.train import train as run

    return run(
        cfg, [data / "train"], "trainval", tmp_path / "m", features=TinyFeatures(), log=_quiet, show_progress=False
    )


def test_auto_takes_the_best_validation_aar_score(data, tmp_path, monkeypatch):
    """Validation's records are the hand-built ones: their AAR APs by hand (0.4, 2/3, 5/6) make ``predicted_iou``
    the attended regions' choice, while the terminal regions (C and E miss: AP 0 by every score) choose
    ``trigger_q``; ``--aar-score auto --checkpoint best`` then tests with the attended regions' choice."""
    import zoomrl.experiments.active.train as train_module
    from zoomrl.experiments.active.test import test

    monkeypatch.setattr(train_module, "run_records", lambda *a, **k: records())
    cfg = make_config("tiny", class_object="box", epochs=1, val_fraction=0.25, iou_weight=1.0)
    train(cfg, data, tmp_path)
    run = tmp_path / "m" / "box"
    record = json.loads((run / "validation.json").read_text())
    (epoch,) = record["epochs"]
    assert epoch["aar_ap_by_score"] == pytest.approx(BY_HAND_AREA)
    assert (epoch["aar_score"], epoch["score"]) == ("predicted_iou", "trigger_q")
    assert record["best"] == pytest.approx(
        {"epoch": 1, "score": "trigger_q", "ap": 0.0, "aar_score": "predicted_iou", "aar_ap": 5 / 6}
    )
    assert json.loads((run / "config.json").read_text())["extra"]["validation"] == record["best"]
    kw = dict(model_dir=tmp_path / "m", features=TinyFeatures(), log=_quiet, show_progress=False, baselines=False)
    res = test(
        make_config("tiny", class_object="box", aar_score="auto"), [data / "test"], "test", "best", tmp_path / "r", **kw
    )
    assert res["aar_score"] == res["config"]["aar_score"] == "predicted_iou"
    assert res["agent"]["all_attended_regions"]["ap_area"] == res["aar_by_score"]["predicted_iou"]["ap_area"]


def test_the_iou_head_trains_and_tests_in_the_active_family(data, tmp_path):
    """A tiny run with ``iou_weight``: the checkpoint has the head, validation and the test score by its
    prediction, and every analysed box of the test records carries a finite predicted IoU."""
    from zoomrl.agents.dqn.checkpoint import read_weights_meta
    from zoomrl.experiments.active.test import test

    cfg = make_config("tiny", class_object="box", epochs=2, val_fraction=0.25, iou_weight=1.0)
    out = train(cfg, data, tmp_path)
    assert read_weights_meta(Path(out["weights"]))["iou_head"] is True
    record = json.loads((tmp_path / "m" / "box" / "validation.json").read_text())
    for epoch in record["epochs"]:
        assert "predicted_iou" in epoch["ap_by_score"]
        assert set(epoch["aar_ap_by_score"]) == set(ATTENDED_SCORES) - {"region_score"}  # no --region-scorer
    kw = dict(model_dir=tmp_path / "m", features=TinyFeatures(), log=_quiet, show_progress=False, baselines=False)
    # the test's command line says nothing of the head: the run's iou_weight is adopted
    res = test(
        make_config("tiny", class_object="box", aar_score="predicted_iou"),
        [data / "test"],
        "test",
        None,
        tmp_path / "r",
        **kw,
    )
    assert res["config"]["iou_weight"] == 1.0 and res["aar_score"] == "predicted_iou"
    assert set(res["aar_by_score"]) == set(ATTENDED_SCORES) - {"region_score"}
    assert "predicted_iou" in res["agent_by_score"]
    images = json.loads((tmp_path / "r" / "detections.json").read_text())["images"]
    windows = 0
    for image in images:
        for s in image["searches"]:
            assert len(s["predicted_iou"]) == len(s["windows"]) == len(s["q_values"])
            assert all(math.isfinite(v) and 0.0 < v < 1.0 for v in s["predicted_iou"])
            assert all(len(row) == 9 for row in s["q_values"]) and max(s["actions"]) <= TRIGGER
            windows += len(s["windows"])
    assert windows == 2 * 10  # tiny: 10 steps per test image
