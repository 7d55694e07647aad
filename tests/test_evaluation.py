"""Tests of zoomrl.eval.detection, zoomrl.eval.plots, zoomrl.eval.tables and scripts/compare_runs.py on hand-computed
cases.

Boxes are [x1, y1, x2, y2] in pixel edges (width x2 - x1), as in zoomrl.core.geometry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from zoomrl.eval.detection import (
    average_precision_area,
    average_precision_voc07,
    detections_from_records,
    evaluate,
    match_detections,
    precision_recall,
    recall_at_windows,
    share_searches_without_trigger,
    summary_table,
    windows_histogram,
    windows_per_found_object,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def gt(box: list[float], difficult: bool = False) -> dict[str, Any]:
    return {"box": box, "difficult": difficult}


def hit(box: list[float], score: float, steps: int = 1) -> dict[str, Any]:
    """A triggered search whose last window is ``box``."""
    return {
        "windows": [box] * steps,
        "actions": [0] * (steps - 1) + [5],
        "q_values": None,
        "triggered": True,
        "box": box,
        "score": score,
        "steps": steps,
    }


def miss(steps: int) -> dict[str, Any]:
    """A search that ended without a trigger."""
    return {
        "windows": [[0, 0, 100, 100]] * steps,
        "actions": [0] * steps,
        "q_values": None,
        "triggered": False,
        "box": None,
        "score": None,
        "steps": steps,
    }


def record(image_id: str, gts: list[dict[str, Any]], searches: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "image_id": image_id,
        "width": 100,
        "height": 100,
        "ground_truth": gts,
        "searches": searches,
        "windows_analysed": sum(s["steps"] for s in searches),
    }


def run(records: list[dict[str, Any]]):
    dets = detections_from_records(records)
    match = match_detections(dets, records)
    recall, precision = precision_recall(match)
    return dets, match, recall, precision


# Two images, three positives; ranked detections TP, FP, TP, FP; object G2 of image "a" is never found.
#   a: G1 [0,0,10,10], G2 [20,20,30,30]; searches: hit G1 exactly (0.9, 2 steps), hit empty area (0.8, 3 steps)
#   b: G3 [0,0,10,10]; searches: hit [1,1,10,10] (IoU 81/100 = 0.81, score 0.7, 1 step), a miss of 10 steps,
#      hit empty area (0.6, 4 steps)
RECORDS_AB = [
    record(
        "a", [gt([0, 0, 10, 10]), gt([20, 20, 30, 30])], [hit([0, 0, 10, 10], 0.9, 2), hit([40, 40, 50, 50], 0.8, 3)]
    ),
    record("b", [gt([0, 0, 10, 10])], [hit([1, 1, 10, 10], 0.7, 1), miss(10), hit([50, 50, 60, 60], 0.6, 4)]),
]


def test_ap_hand_case_both_definitions():
    _, match, recall, precision = run(RECORDS_AB)
    # cumTP 1,1,2,2 ; cumFP 0,1,1,2 ; n_pos 3
    assert match.n_positives == 3
    assert match.tp.tolist() == [1, 0, 1, 0]
    assert match.fp.tolist() == [0, 1, 0, 1]
    assert match.matched_gt.tolist() == [0, -1, 0, -1]
    np.testing.assert_allclose(recall, [1 / 3, 1 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(precision, [1, 1 / 2, 2 / 3, 1 / 2])
    # 11-point: t = 0, .1, .2, .3 -> every point has recall >= t -> max precision 1   (4 x 1)
    #           t = .4, .5, .6    -> points with recall 2/3 -> max(2/3, 1/2) = 2/3 (3 x 2/3 = 2)
    #           t = .7 .. 1.0     -> no point -> 0
    # AP07 = (4 + 2) / 11 = 6/11
    assert average_precision_voc07(recall, precision) == pytest.approx(6 / 11)
    # area: mrec [0, 1/3, 1/3, 2/3, 2/3, 1], mpre [0, 1, 1/2, 2/3, 1/2, 0]
    #       envelope from the right: [1, 1, 2/3, 2/3, 1/2, 0]
    #       recall changes 0->1/3 (x 1), 1/3->2/3 (x 2/3), 2/3->1 (x 0)
    # AP = 1/3 + 2/9 = 5/9
    assert average_precision_area(recall, precision) == pytest.approx(5 / 9)
    result = evaluate(RECORDS_AB)
    assert result["ap_voc07"] == pytest.approx(6 / 11)
    assert result["ap_area"] == pytest.approx(5 / 9)
    assert result["n_positives"] == 3 and result["n_detections"] == 4 and result["n_true_positives"] == 2
    assert result["scores"] == [0.9, 0.8, 0.7, 0.6]


def test_detection_fields():
    dets = detections_from_records(RECORDS_AB)
    # window_count: a: 2, 2+3 = 5 ; b: 1, (1 + 10 miss) + 4 = 15
    assert [d.window_count for d in dets] == [2, 5, 1, 15]
    assert [d.search_steps for d in dets] == [2, 3, 1, 4]
    np.testing.assert_allclose([d.trigger_iou for d in dets], [1.0, 0.0, 0.81, 0.0])
    assert [d.image_id for d in dets] == ["a", "a", "b", "b"]
    np.testing.assert_array_equal(dets[2].box, [1, 1, 10, 10])


def test_iou_exactly_at_threshold_matches():
    # [0,0,10,5] inside [0,0,10,10]: IoU = 50 / 100 = 0.5 >= 0.5 -> TP
    recs = [record("x", [gt([0, 0, 10, 10])], [hit([0, 0, 10, 5], 1.0)])]
    _, match, _, _ = run(recs)
    assert match.tp.tolist() == [1]


def test_ties_keep_input_order():
    # Same score 0.5: stable sort keeps input order.
    # FP first then TP: recall [0, 1], precision [0, 1/2]; envelope [.5,.5,.5,0] -> AP = 1 x 1/2 = 0.5
    fp_first = [record("t", [gt([0, 0, 10, 10])], [hit([50, 50, 60, 60], 0.5), hit([0, 0, 10, 10], 0.5)])]
    _, match, recall, precision = run(fp_first)
    assert match.tp.tolist() == [0, 1] and match.order.tolist() == [0, 1]
    np.testing.assert_allclose(recall, [0, 1])
    np.testing.assert_allclose(precision, [0, 0.5])
    assert average_precision_area(recall, precision) == pytest.approx(0.5)
    # AP07: every t has the point (recall 1, precision 1/2) -> 0.5
    assert average_precision_voc07(recall, precision) == pytest.approx(0.5)
    # TP first then FP: recall [1, 1], precision [1, 1/2] -> both APs 1
    tp_first = [record("t", [gt([0, 0, 10, 10])], [hit([0, 0, 10, 10], 0.5), hit([50, 50, 60, 60], 0.5)])]
    _, match, recall, precision = run(tp_first)
    assert match.tp.tolist() == [1, 0]
    assert average_precision_area(recall, precision) == pytest.approx(1.0)
    assert average_precision_voc07(recall, precision) == pytest.approx(1.0)


def test_duplicate_detection_is_false_positive():
    recs = [record("d", [gt([0, 0, 10, 10])], [hit([0, 0, 10, 10], 0.9), hit([0, 0, 10, 9], 0.8)])]
    _, match, recall, precision = run(recs)
    # second detection (IoU 0.9) hits the already matched object -> FP
    assert match.tp.tolist() == [1, 0] and match.fp.tolist() == [0, 1]
    assert match.matched_gt.tolist() == [0, -1]
    np.testing.assert_allclose(precision, [1, 0.5])
    # recall reaches 1 at precision 1 -> both APs 1
    assert average_precision_area(recall, precision) == pytest.approx(1.0)
    assert average_precision_voc07(recall, precision) == pytest.approx(1.0)


def test_difficult_object_is_ignored_and_not_a_positive():
    # G0 difficult, G1 normal. Detections: on G0 (0.9) ignored, on G0 again (0.85) ignored (difficult never
    # "used up"), on G1 (0.8) TP, near G0 but IoU 25/100 = 0.25 (0.7) -> FP.
    recs = [
        record(
            "f",
            [gt([0, 0, 10, 10], difficult=True), gt([20, 20, 30, 30])],
            [hit([0, 0, 10, 10], 0.9), hit([0, 0, 10, 10], 0.85), hit([20, 20, 30, 30], 0.8), hit([0, 0, 5, 5], 0.7)],
        )
    ]
    _, match, recall, precision = run(recs)
    assert match.n_positives == 1
    assert match.ignored.tolist() == [1, 1, 0, 0]
    assert match.tp.tolist() == [0, 0, 1, 0]
    assert match.fp.tolist() == [0, 0, 0, 1]
    assert match.matched_gt.tolist() == [-1, -1, 1, -1]
    # cumTP 0,0,1,1 ; cumFP 0,0,0,1 -> precision 0 (0/0 defined as 0), 0, 1, 1/2 ; recall 0,0,1,1
    np.testing.assert_allclose(recall, [0, 0, 1, 1])
    np.testing.assert_allclose(precision, [0, 0, 1, 0.5])
    # envelope [1,1,1,1,.5,0] over mrec [0,0,0,1,1,1] -> one change 0->1 times 1 = 1
    assert average_precision_area(recall, precision) == pytest.approx(1.0)
    assert average_precision_voc07(recall, precision) == pytest.approx(1.0)


def test_image_without_ground_truth_gives_false_positives():
    # c has no object: its detection (0.9) is FP; d's detection (0.4) TP.
    # recall [0, 1], precision [0, 1/2] -> area AP = 1/2, AP07 = 11 x (1/2) / 11 = 1/2
    recs = [record("c", [], [hit([0, 0, 10, 10], 0.9)]), record("d", [gt([0, 0, 10, 10])], [hit([0, 0, 10, 10], 0.4)])]
    dets, match, recall, precision = run(recs)
    assert dets[0].trigger_iou == 0.0
    assert match.fp.tolist() == [1, 0] and match.tp.tolist() == [0, 1]
    assert average_precision_area(recall, precision) == pytest.approx(0.5)
    assert average_precision_voc07(recall, precision) == pytest.approx(0.5)


def test_no_detections_at_all():
    recs = [record("n", [gt([0, 0, 10, 10])], [miss(10)]), record("m", [gt([5, 5, 9, 9])], [miss(10)])]
    result = evaluate(recs)
    assert result["ap_voc07"] == 0.0 and result["ap_area"] == 0.0
    assert result["n_detections"] == 0 and result["n_positives"] == 2
    assert result["recall"] == [] and result["precision"] == []
    assert all(v == 0.0 for v in result["recall_at_windows"].values())
    assert result["median_windows_per_found_object"] is None
    assert result["share_searches_without_trigger"] == 1.0
    assert result["mean_windows_per_image"] == 10.0
    json.dumps(result, allow_nan=False)
    assert average_precision_voc07(np.array([]), np.array([])) == 0.0
    assert average_precision_area(np.array([]), np.array([])) == 0.0


def test_no_positives_is_nan_free():
    # only a difficult object and a detection elsewhere: n_pos 0 -> recall 0, AP defined as 0
    recs = [record("z", [gt([0, 0, 10, 10], difficult=True)], [hit([50, 50, 60, 60], 0.3)])]
    result = evaluate(recs)
    assert result["n_positives"] == 0
    assert result["ap_voc07"] == 0.0 and result["ap_area"] == 0.0
    assert result["recall"] == [0.0]
    json.dumps(result, allow_nan=False)


def test_recall_at_windows_two_images():
    dets, match, _, _ = run(RECORDS_AB)
    # TPs: G1 of "a" at window_count 2, G3 of "b" at window_count 1; 3 positives.
    # k=1 -> {G3} 1/3 ; k=2 -> {G1, G3} 2/3 ; k=3, 100 -> 2/3
    out = recall_at_windows(dets, match, RECORDS_AB, grid=(1, 2, 3, 100))
    assert out == pytest.approx({1: 1 / 3, 2: 2 / 3, 3: 2 / 3, 100: 2 / 3})
    result = evaluate(RECORDS_AB, grid=(1, 2, 3, 100))
    assert result["recall_at_windows"] == pytest.approx({"1": 1 / 3, "2": 2 / 3, "3": 2 / 3, "100": 2 / 3})


def test_windows_per_found_object():
    dets, match, _, _ = run(RECORDS_AB)
    # TPs in ranked order: score 0.9 (search of 2 steps), score 0.7 (search of 1 step)
    assert windows_per_found_object(dets, match) == [2, 1]
    assert windows_histogram([2, 1]) == {1: 1, 2: 1}
    assert windows_histogram([3, 3, 1]) == {1: 1, 2: 0, 3: 2}
    assert windows_histogram([]) == {}
    result = evaluate(RECORDS_AB)
    assert result["windows_per_found_object"] == [2, 1]
    assert result["median_windows_per_found_object"] == 1.5
    assert result["windows_histogram"] == {"1": 1, "2": 1}


def test_search_statistics():
    # 5 searches, one without trigger -> 1/5 ; windows per image: a 2+3 = 5, b 1+10+4 = 15 -> mean 10
    assert share_searches_without_trigger(RECORDS_AB) == pytest.approx(0.2)
    result = evaluate(RECORDS_AB)
    assert result["share_searches_without_trigger"] == pytest.approx(0.2)
    assert result["n_searches"] == 5
    assert result["mean_windows_per_image"] == 10.0
    # trigger IoUs 1.0, 0, 0.81, 0 -> bins [0,.1): 2, [.8,.9): 1, [.9,1]: 1
    hist = result["trigger_iou_histogram"]
    assert len(hist["edges"]) == 11 and hist["counts"] == [2, 0, 0, 0, 0, 0, 0, 0, 1, 1]
    assert share_searches_without_trigger([]) == 0.0
    json.dumps(result, allow_nan=False)


def test_summary_table_contains_names():
    table = summary_table({"agent-alpha": evaluate(RECORDS_AB), "random": evaluate([])})
    assert "agent-alpha" in table and "random" in table and "AP07" in table
    assert "0.5455" in table  # 6/11
    lines = table.splitlines()
    assert len(lines) == 4 and len({len(line) for line in lines}) == 1


def _is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_write_pngs(tmp_path: Path):
    from zoomrl.eval import plots

    results = {"agent": evaluate(RECORDS_AB), "empty": evaluate([])}
    paths = [
        plots.plot_pr_curves(results, str(tmp_path / "pr.png"), title="PR"),
        plots.plot_windows_per_object(results["agent"], str(tmp_path / "sub" / "windows.png")),
        plots.plot_recall_vs_windows(results, str(tmp_path / "recall.png")),
        plots.plot_training_curves(
            [
                {
                    "epoch": e,
                    "mean_reward": 0.1 * e,
                    "mean_final_iou": 0.5,
                    "trigger_success": 0.2 * e,
                    "loss": 1.0 / (e + 1),
                    "epsilon": 1.0 - 0.1 * e,
                }
                for e in range(5)
            ],
            str(tmp_path / "training.png"),
        ),
    ]
    for p in paths:
        assert _is_png(Path(p))
    assert not list(tmp_path.rglob("*.tmp.png"))


def _write_results(folder: Path, records: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True)
    path = folder / "results.json"
    path.write_text(json.dumps({"agent": evaluate(records), "random": {"random": evaluate([])}, "config": {"seed": 0}}))
    return path


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "compare_runs.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )


def test_compare_runs_cli(tmp_path: Path):
    r1 = _write_results(tmp_path / "run1", RECORDS_AB)
    r2 = _write_results(tmp_path / "run2", RECORDS_AB[:1])
    out = tmp_path / "out"
    proc = _cli(str(r1), str(r2), "--names", "first", "second", "--output", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "first" in proc.stdout and "second" in proc.stdout
    assert _is_png(out / "compare_pr.png")
    # default names come from the run folders
    proc = _cli(str(r1), str(r2), "--output", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "run1" in proc.stdout and "run2" in proc.stdout


def test_compare_runs_cli_bad_files(tmp_path: Path):
    r1 = _write_results(tmp_path / "run1", RECORDS_AB)
    missing = tmp_path / "nope" / "results.json"
    proc = _cli(str(r1), str(missing), cwd=tmp_path)
    assert proc.returncode == 2
    assert str(missing) in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    proc = _cli(str(broken), cwd=tmp_path)
    assert proc.returncode == 2 and str(broken) in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_detection_scores_from_the_last_q_values():
    from zoomrl.eval.detection import evaluate, rescored

    gt = [{"box": [0, 0, 10, 10], "difficult": False}]
    # two images; image a's trigger is a hit with Q = [0, 0, 0, 0, 4.0, 5.0] (margin 1.0); image b's is a miss
    # with Q = [0, 0, 0, 0, 0, 6.0] (margin 6.0): the Q-value and the margin rank them differently.
    rec = [
        {
            "image_id": "a",
            "ground_truth": gt,
            "searches": [
                {
                    "triggered": True,
                    "box": [0, 0, 10, 10],
                    "actions": [5],
                    "q_values": [[0, 0, 0, 0, 4.0, 5.0]],
                    "steps": 1,
                }
            ],
        },
        {
            "image_id": "b",
            "ground_truth": gt,
            "searches": [
                {
                    "triggered": True,
                    "box": [20, 20, 30, 30],
                    "actions": [5],
                    "q_values": [[0, 0, 0, 0, 0, 6.0]],
                    "steps": 1,
                }
            ],
        },
    ]
    q = rescored(rec, "trigger_q")
    assert [r["searches"][0]["score"] for r in q] == [5.0, 6.0]
    adv = rescored(rec, "trigger_advantage")
    assert [r["searches"][0]["score"] for r in adv] == [1.0, 6.0]
    prob = rescored(rec, "trigger_probability")
    want = np.exp(5) / (np.exp(5) + np.exp(4) + 4)
    assert prob[0]["searches"][0]["score"] == pytest.approx(want)
    assert "score" not in rec[0]["searches"][0]  # the input is not modified
    # two ground truths, the one hit ranked second: recall 1/2 at precision 1/2 -> AP (area) 0.25; ranked first
    # (a score that puts the hit on top) it would be recall 1/2 at precision 1 -> 0.5
    assert evaluate(q)["ap_area"] == pytest.approx(0.25)
    prob[1]["searches"][0]["score"] = 0.0
    assert evaluate(prob)["ap_area"] == pytest.approx(0.5)


def test_trigger_order_ranks_an_images_first_trigger_above_its_later_ones():
    """Image a: triggers with margins 5 (first) and 9 (second); image b: one trigger with margin -2. By the margin
    alone a's second trigger ranks first; by order, the two first triggers (5 above -2) come before a's second:
    scores 0.5 + 0.4 tanh(margin) - index, by hand."""
    import math

    from zoomrl.eval.detection import ap_by_score, available_scores, rescored

    def search(margin: float, box: list[float]) -> dict:
        return {"triggered": True, "box": box, "actions": [5], "q_values": [[0, 0, 0, 0, 0, margin]], "steps": 1}

    gt = [{"box": [0, 0, 10, 10], "difficult": False}]
    rec = [
        {"image_id": "a", "ground_truth": gt, "searches": [search(5.0, [0, 0, 10, 10]), search(9.0, [50, 50, 60, 60])]},
        {"image_id": "b", "ground_truth": gt, "searches": [{"triggered": False}, search(-2.0, [0, 0, 10, 10])]},
    ]
    scores = [[s.get("score") for s in r["searches"]] for r in rescored(rec, "trigger_order")]
    want = [[0.5 + 0.4 * math.tanh(5.0), -1 + 0.5 + 0.4 * math.tanh(9.0)], [None, 0.5 + 0.4 * math.tanh(-2.0)]]
    assert scores == [[pytest.approx(v) if v is not None else None for v in row] for row in want]
    assert "trigger_order" in available_scores(rec)
    # both hits ranked above the miss: AP 1 by order; by the margin the miss comes first, then the hits at
    # precision 1/2 (recall 1/2) and 2/3 (recall 1): the precision envelope is 2/3 over all recall, AP 2/3
    aps = ap_by_score(rec)
    assert aps["trigger_order"] == pytest.approx(1.0)
    assert aps["trigger_advantage"] == pytest.approx(2 / 3)


def test_ap_table_rows_and_columns_by_hand():
    from zoomrl.eval.tables import ap_row, ap_table

    agent = {"ap_area": 0.3, "median_windows_per_found_object": 4.0}
    row = ap_row(agent, {"ap_area": 0.1}, {"ap_area": 0.15}, {"ap_area": 0.6})
    assert row == {
        "ap": 0.3,
        "random": 0.15,
        "whole_image": 0.1,
        "upper_bound": 0.6,
        "of_upper_bound": 0.5,
        "times_random": 2.0,
        "median_windows": 4.0,
    }
    # a random agent at 0 and no found object: inf times random, 0 windows; an upper bound at 0: 0 of it
    zero = ap_row({"ap_area": 0.2}, {"ap_area": 0.0}, {"ap_area": 0.0}, {"ap_area": 0.0})
    assert (zero["of_upper_bound"], zero["times_random"], zero["median_windows"]) == (0.0, float("inf"), None)
    lines = ap_table(
        [{"model": "m", **row, "train_s": 12.4, "test_s": 3.6}, {"model": "z", **zero, "train_s": 1, "test_s": 2}],
        "upper 3/4",
    )
    assert lines == [
        "model              AP  whole  random  upper 3/4  AP/upper  AP/random  windows  train s  test s",
        "m               0.300  0.100   0.150      0.600      0.50        2.0        4       12       4",
        "z               0.200  0.000   0.000      0.000      0.00        inf        0        1       2",
    ]
