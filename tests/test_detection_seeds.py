"""``scripts/detection_seeds.py``: several seeds' detection results in one table, against figures worked by hand."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO
from zoomrl.eval.detection_seeds import load_seed, rows, summarize, table


def ap(value):
    return {"ap_area": value, "ap_voc07": value}


def write_active(folder, seed, tr, aar, region):
    (folder / "raccoon").mkdir(parents=True)
    data = {
        "config": {"seed": seed},
        "agent": {"terminal_regions": ap(tr), "all_attended_regions": ap(aar)},
        "score": "trigger_order",
        "agent_by_score": {"trigger_q": ap(0.1), "trigger_order": ap(tr)},
        "aar_score": "region_score",
        "aar_by_score": {"trigger_q": ap(0.2), "region_score": ap(region)},
        "whole_image": {"terminal_regions": ap(0.2)},
        "random": {"terminal_regions": ap(0.18)},
        "oracle": {"terminal_regions": ap(0.95)},
    }
    (folder / "raccoon" / "results.json").write_text(json.dumps(data))
    return folder


def test_each_seed_and_the_mean_by_hand(tmp_path):
    a = write_active(tmp_path / "a", 0, 0.4, 0.3, 0.3)
    b = write_active(tmp_path / "b", 1, 0.2, 0.5, 0.5)
    summary = summarize([load_seed(a), load_seed(b / "raccoon" / "results.json")])
    assert summary["seeds"] == [0, 1]
    by_name = {r["name"]: r for r in summary["rows"]}
    assert list(by_name)[:3] == ["agent TR, score used", "TR by trigger_q", "TR by trigger_order"]
    assert by_name["agent TR, score used"]["values"] == [0.4, 0.2]
    assert by_name["agent TR, score used"]["mean"] == pytest.approx(0.3)
    assert by_name["agent TR, score used"]["notes"] == ["trigger_order", "trigger_order"]
    assert by_name["agent AAR, score used"]["mean"] == pytest.approx(0.4)
    assert by_name["AAR by region_score"]["values"] == [0.3, 0.5]
    assert [by_name[k]["mean"] for k in ("whole image", "random agent TR", "oracle TR")] == pytest.approx(
        [0.2, 0.18, 0.95]
    )
    assert "random agent AAR, the run's region classifier" not in by_name  # no classifier in these runs
    text = table(summary)
    assert "| agent TR, score used | 0.400 (trigger_order) | 0.200 (trigger_order) | **0.300** |" in text
    # a run with a region classifier: its random agent's attended regions under it, after the random agent's TR
    data = json.loads((a / "raccoon" / "results.json").read_text())
    data["random"]["all_attended_regions"] = ap(0.6)
    (a / "raccoon" / "results.json").write_text(json.dumps(data))
    names = [name for name, _, _ in rows(load_seed(a))]
    assert names[names.index("random agent TR") + 1] == "random agent AAR, the run's region classifier"
    assert dict((n, v) for n, v, _ in rows(load_seed(a)))["random agent AAR, the run's region classifier"] == 0.6
    assert text.splitlines()[0] == "| run | seed 0 | seed 1 | **mean** |"


def test_a_hierarchical_run_takes_its_upper_bound_as_the_oracle(tmp_path):
    data = {
        "config": {"seed": 2, "scale_subregion": 0.75},
        "agent": ap(0.38),
        "score": "trigger_q",
        "agent_by_score": {"trigger_q": ap(0.38)},
        "whole_image": ap(0.2),
        "upper_bound": {"scale_0.75": ap(0.954), "scale_0.5": ap(0.648)},
    }
    (tmp_path / "results.json").write_text(json.dumps(data))
    names = {r["name"]: r["mean"] for r in summarize([load_seed(tmp_path)])["rows"]}
    assert names == pytest.approx(
        {"agent TR, score used": 0.38, "TR by trigger_q": 0.38, "whole image": 0.2, "oracle TR": 0.954}
    )


def test_the_script_prints_the_table_and_refuses_a_missing_file(tmp_path):
    a = write_active(tmp_path / "a", 0, 0.4, 0.3, 0.3)
    script = [sys.executable, str(REPO / "scripts" / "detection_seeds.py")]
    out = subprocess.run([*script, str(tmp_path / "none")], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.strip().startswith("error: ") and "none" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    ok = subprocess.run([*script, str(a), "--output", str(tmp_path / "s.json")], capture_output=True, text=True)
    assert ok.returncode == 0 and "| agent AAR, score used | 0.300 (region_score) |" in ok.stdout
    assert json.loads((tmp_path / "s.json").read_text())["seeds"] == [0]


def test_a_run_with_a_box_regressor_adds_its_unmoved_and_moved_whole_image_rows(tmp_path):
    a = write_active(tmp_path / "a", 0, 0.4, 0.3, 0.3)
    path = a / "raccoon" / "results.json"
    data = json.loads(path.read_text())
    data["unrefined_by_score"] = {"trigger_q": ap(0.05), "trigger_order": ap(0.25)}
    data["unrefined_aar_by_score"] = {"trigger_q": ap(0.1), "region_score": ap(0.22)}
    data["whole_image_moved"] = {"terminal_regions": ap(0.31)}
    path.write_text(json.dumps(data))
    by_name = {r["name"]: r["values"] for r in summarize([load_seed(a)])["rows"]}
    assert by_name["TR, score used, unmoved windows"] == [0.25]  # the score used: trigger_order
    assert by_name["AAR, score used, unmoved windows"] == [0.22]  # region_score
    assert by_name["whole image moved by the regressor"] == [0.31]
    plain = {r["name"] for r in summarize([load_seed(write_active(tmp_path / "b", 0, 0.4, 0.3, 0.3))])["rows"]}
    assert not any("unmoved" in n or "moved by" in n for n in plain)
