"""``python -m zoomrl sweep``: the table, the flag checks, and a two-class sweep on Ray (skipped without Ray or
without ../shared/data/voc2012-sample)."""

import csv
import importlib.util
import json

import pytest

from conftest import SHARED
from zoomrl.experiments.sweep.cli import (
    VOC_CLASSES,
    absolute_paths,
    check_family_flags,
    classes_of,
    parse_grid,
    parse_sweep,
)
from zoomrl.experiments.sweep.table import build_table, extract

VOC_SAMPLE = SHARED / "data" / "voc2012-sample"


def test_table_means_and_extraction():
    rows = [
        {"setting": "default", "class": "a", "status": "ok", "ap_tr": 0.2, "ap_aar": 0.5},
        {"setting": "default", "class": "b", "status": "ok", "ap_tr": 0.4, "ap_aar": 0.1},
        {"setting": "default", "class": "c", "status": "failed: x", "ap_tr": None, "ap_aar": None},
    ]
    table = build_table(rows, ["ap_tr", "ap_aar"])
    mean = table[-1]
    assert mean["class"] == "mean" and mean["status"] == "2 classes"
    assert mean["ap_tr"] == pytest.approx(0.3) and mean["ap_aar"] == pytest.approx(0.3)
    res = {"agent": {"terminal_regions": {"ap_voc07": 0.25}, "all_attended_regions": {"ap_voc07": 0.5}}}
    assert extract("active", res) == {"ap_tr": 0.25, "ap_aar": 0.5}
    assert extract("hierarchical", {"agent": {"ap_voc07": 0.7}}) == {"ap": 0.7}
    with pytest.raises(ValueError, match="agent/ap_voc07"):
        extract("hierarchical", {"agent": {}})


def test_flags_split_between_sweep_and_family(tmp_path):
    opts, rest = parse_sweep(
        "active", ["--classes", "cat,dog", "--epochs", "1", "--num-cpus", "2", "--bool-draw", "--data", "rel/dir"]
    )
    assert opts.classes == "cat,dog" and opts.num_cpus == 2
    assert rest == ["--epochs", "1", "--bool-draw", "--data", "rel/dir"]
    assert absolute_paths(rest)[-1].startswith("/") and absolute_paths(["--data=x"])[0].startswith("--data=/")
    check_family_flags("active", ["--epochs", "1", "--bool-draw", "--preset", "tiny"])  # train's and test's
    with pytest.raises(ValueError, match="--no-such-flag"):
        check_family_flags("active", ["--no-such-flag", "3"])
    with pytest.raises(ValueError, match="--class-object"):
        check_family_flags("active", ["--class-object", "cat"])
    assert classes_of("all") == list(VOC_CLASSES) and len(VOC_CLASSES) == 20
    assert classes_of("cat, dog") == ["cat", "dog"]
    with pytest.raises(ValueError):
        classes_of("cat,cat")
    assert parse_grid(["learning-rate=1e-4,1e-3"]) == [("--learning-rate", ["1e-4", "1e-3"])]
    with pytest.raises(ValueError, match="FLAG=V1,V2"):
        parse_grid(["learning-rate"])


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
@pytest.mark.skipif(not VOC_SAMPLE.is_dir(), reason="../shared/data/voc2012-sample is absent")
def test_two_class_sweep_on_ray(tmp_path, capsys):
    from zoomrl.experiments.cli import main

    out = tmp_path / "out"
    code = main(
        [
            "sweep",
            "active",
            "--classes",
            "person,aeroplane",
            "--train-set",
            "test",
            "--test-set",
            "test",
            "--num-cpus",
            "2",
            "--output-dir",
            str(out),
            "--model-dir",
            str(tmp_path / "models"),
            "--data",
            str(VOC_SAMPLE),
            "--preset",
            "tiny",
            "--features",
            "scratch",
            "--max-images",
            "2",
            "--epochs",
            "1",
            "--test-steps",
            "4",
            "--no-baselines",
        ]
    )
    assert code == 0, capsys.readouterr().err
    with open(out / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["class"] for r in rows] == ["person", "aeroplane", "mean"]
    assert all(r["status"] == "ok" for r in rows[:2])
    per_class = [json.loads((out / "default" / c / "results.json").read_text()) for c in ("person", "aeroplane")]
    tr = [r["agent"]["terminal_regions"]["ap_voc07"] for r in per_class]
    assert [float(r["ap_tr"]) for r in rows[:2]] == pytest.approx(tr)
    assert float(rows[2]["ap_tr"]) == pytest.approx(sum(tr) / 2)
    assert (out / "sweep_ap.png").is_file()
    assert json.loads((out / "sweep.json").read_text())["rows"][2]["class"] == "mean"
