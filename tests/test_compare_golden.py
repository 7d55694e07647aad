"""scripts/compare_golden.py: the check that a refactor leaves results as they were (milliseconds)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("compare_golden", ROOT / "scripts" / "compare_golden.py")
compare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare)


def test_differences_by_hand() -> None:
    ref = {"ap": 0.5, "seconds": 3.0, "dets": [1, 2], "name": "a", "where": "/x/y", "only_ref": 1}
    new = {"ap": 0.5, "seconds": 9.0, "dets": [1, 3], "name": "b", "where": "/z", "only_new": 2}
    assert compare.differences(ref, new, "r") == [
        "r.dets[1]: 2 and 3",
        "r.name: 'a' and 'b'",
        "r.only_new: only in NEW",
        "r.only_ref: only in REF",
    ]
    assert compare.differences([1, 2], [1], "l") == ["l: lengths 2 and 1"]
    assert compare.differences(ref, dict(ref), "r") == []


def test_main_compares_trees_and_skips_configs(tmp_path: Path, capsys) -> None:
    for side, ap in (("ref", 0.5), ("new", 0.25)):
        (tmp_path / side / "f").mkdir(parents=True)
        (tmp_path / side / "f" / "results.json").write_text(json.dumps({"ap": ap}))
        (tmp_path / side / "f" / "config.json").write_text(json.dumps({"lr": ap}))
    ref, new = str(tmp_path / "ref"), str(tmp_path / "new")
    assert compare.main([ref, new]) == 1
    assert capsys.readouterr().out.splitlines() == ["differs: f/results.json.ap: 0.5 and 0.25", "1 differences"]
    assert compare.main([ref, ref]) == 0
    (tmp_path / "ref" / "f" / "extra.json").write_text("{}")
    assert compare.main([ref, new]) == 1
    assert "missing in NEW: f/extra.json" in capsys.readouterr().out
    assert compare.main([ref]) == 2
