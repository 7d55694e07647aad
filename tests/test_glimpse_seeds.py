"""``scripts/glimpse_seeds.py``: several seeds' glimpse results in one table, against figures worked by hand."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO
from zoomrl.eval.glimpse_seeds import load_seed, summarize, table


def regress_scores(r06, r10, d):
    return {"detection_rate": {"0.02": 0.0, "0.04": 0.0, "0.06": r06, "0.08": r10, "0.10": r10}, "mean_distance": d}


def write_seed(folder, seed, ram10, cnn10):
    folder.mkdir(parents=True)
    models = {
        "ram": {"mean_path": regress_scores(0.1, ram10, 0.2), "monte_carlo": regress_scores(0.2, 0.5, 0.1)},
        "cnn": regress_scores(0.05, cnn10, 0.3),
        "centre": regress_scores(0.25, 0.3, 0.197),
    }
    (folder / "results.json").write_text(json.dumps({"task": "regress", "test_size": 40, "models": models}))
    (folder / "config.json").write_text(json.dumps({"seed": seed}))
    return folder


def test_table_by_hand(tmp_path):
    folders = [write_seed(tmp_path / f"s{s}", s, r, c) for s, r, c in ((0, 0.4, 0.25), (1, 0.45, 0.3), (2, 0.35, 0.2))]
    summary = summarize([load_seed(f) for f in folders])
    assert summary["seeds"] == [0, 1, 2] and summary["task"] == "regress" and summary["test_size"] == 40
    rows = {(r["model"], r["path"]): r for r in summary["rows"]}
    assert list(rows) == [("ram", "single path"), ("ram", "Monte-Carlo"), ("cnn", ""), ("centre", "")]
    assert rows["ram", "single path"]["figures"]["rate_0.10"] == pytest.approx([40.0, 45.0, 35.0])
    assert rows["ram", "single path"]["means"]["rate_0.10"] == pytest.approx(40.0)  # (40 + 45 + 35) / 3
    assert rows["cnn", ""]["means"]["rate_0.10"] == pytest.approx(25.0)
    text = table(summary)
    assert "| ram, single path | 10.0 / 10.0 / 10.0 | **10.0** | 40.0 / 45.0 / 35.0 | **40.0** |" in text
    assert "| centre | 25.0 / 25.0 / 25.0 | **25.0** | 30.0 / 30.0 / 30.0 | **30.0** | 0.197 / 0.197 / 0.197 |" in text


def test_mixed_or_missing_results_are_one_line_errors(tmp_path):
    a = write_seed(tmp_path / "a", 0, 0.4, 0.2)
    b = tmp_path / "b"
    b.mkdir()
    (b / "results.json").write_text(json.dumps({"task": "classify", "test_size": 40, "models": {}}))
    with pytest.raises(ValueError, match="mix tasks"):
        summarize([load_seed(a), load_seed(b)])
    script = [sys.executable, str(REPO / "scripts" / "glimpse_seeds.py")]
    out = subprocess.run([*script, str(tmp_path / "none")], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.startswith("error: ") and "no such results file" in out.stderr
    assert out.stderr.count("\n") == 1
    ok = subprocess.run([*script, str(a), "--output", str(tmp_path / "s.json")], capture_output=True, text=True)
    assert ok.returncode == 0 and "| cnn |" in ok.stdout
    assert json.loads((tmp_path / "s.json").read_text())["seeds"] == [0]


def test_raw_weight_rows_by_hand(tmp_path):
    """Models trained with ``weight_average`` get their raw weights' rows too, where every seed holds them."""
    folders = []
    for seed, (avg, raw) in enumerate(((0.05, 0.09), (0.07, 0.08))):
        folder = tmp_path / f"s{seed}"
        folder.mkdir()
        ram = {"mean_path": {"error": avg}, "monte_carlo": {"error": avg / 2}}
        ram["unaveraged"] = {"mean_path": {"error": raw}, "monte_carlo": {"error": raw / 2}}
        cnn = {"error": 0.1, "unaveraged": {"error": 0.2 + seed / 10}}
        models = {"ram": ram, "cnn": cnn, "mlp": {"error": 0.3}}
        (folder / "results.json").write_text(json.dumps({"task": "classify", "test_size": 359, "models": models}))
        folders.append(folder)
    rows = {(r["model"], r["path"]): r for r in summarize([load_seed(f) for f in folders])["rows"]}
    assert list(rows) == [
        ("ram", "single path"),
        ("ram", "Monte-Carlo"),
        ("ram", "single path, raw weights"),
        ("ram", "Monte-Carlo, raw weights"),
        ("cnn", ""),
        ("cnn", "raw weights"),
        ("mlp", ""),
    ]
    assert rows["ram", "single path, raw weights"]["means"]["error"] == pytest.approx(8.5)  # (9 + 8) / 2
    assert rows["ram", "single path"]["means"]["error"] == pytest.approx(6.0)  # (5 + 7) / 2
    assert rows["cnn", "raw weights"]["figures"]["error"] == pytest.approx([20.0, 30.0])
    one = json.loads((folders[1] / "results.json").read_text())
    del one["models"]["cnn"]["unaveraged"]
    (folders[1] / "results.json").write_text(json.dumps(one))
    rows = {(r["model"], r["path"]) for r in summarize([load_seed(f) for f in folders])["rows"]}
    assert ("cnn", "raw weights") not in rows and ("ram", "single path, raw weights") in rows
