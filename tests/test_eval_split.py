"""``test --eval-split val`` of the detecting families: the run's validation images, on which a test reproduces the
APs its training's validation recorded for the same checkpoint; data that are not the run's, or a run without a
validation split, are one-line errors."""

import json

import pytest

from conftest import TinyFeatures
from zoomrl.experiments.active.config import make_config


def _quiet(_):
    pass


@pytest.fixture(scope="module")
def run(square_voc, tmp_path_factory):
    from zoomrl.experiments.active.train import train

    root = tmp_path_factory.mktemp("eval_split")
    cfg = make_config("tiny", class_object="box", epochs=2, val_fraction=0.25, region_scorer=True)
    train(cfg, [square_voc / "train"], "trainval", root / "m", features=TinyFeatures(), log=_quiet, show_progress=False)
    return square_voc, root


def test_the_validation_split_reproduces_the_recorded_validation(run, tmp_path):
    from zoomrl.experiments.active.test import test

    data, root = run
    record = json.loads((root / "m" / "box" / "validation.json").read_text())
    best = next(e for e in record["epochs"] if e["epoch"] == record["best"]["epoch"])
    kw = dict(model_dir=root / "m", features=TinyFeatures(), log=_quiet, show_progress=False, eval_split="val")
    res = test(make_config("tiny", class_object="box"), [data / "train"], "trainval", "best", tmp_path / "r", **kw)
    assert res["split"] == "val" and res["n_images"] == len(record["images"])
    images = [r["image_id"] for r in json.loads((tmp_path / "r" / "detections.json").read_text())["images"]]
    assert sorted(images) == sorted(record["images"])
    assert {k: v["ap_area"] for k, v in res["agent_by_score"].items()} == pytest.approx(best["ap_by_score"])
    assert {k: v["ap_area"] for k, v in res["aar_by_score"].items()} == pytest.approx(best["aar_ap_by_score"])


def test_other_data_or_no_validation_split_is_one_line(run, tmp_path):
    import subprocess
    import sys

    from zoomrl.experiments.active.test import test
    from zoomrl.experiments.active.train import train

    data, root = run
    kw = dict(features=TinyFeatures(), log=_quiet, show_progress=False, eval_split="val")
    with pytest.raises(ValueError, match="validated on 1 other images; --eval-split val needs the run's training"):
        test(make_config("tiny", class_object="box"), [data / "test"], "test", "best", tmp_path / "r",
             model_dir=root / "m", **kw)  # fmt: skip
    train(make_config("tiny", class_object="box", epochs=1), [data / "train"], "trainval", tmp_path / "n",
          features=TinyFeatures(), log=_quiet, show_progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="needs a run trained with a validation split"):
        test(make_config("tiny", class_object="box"), [data / "train"], "trainval", None, tmp_path / "r2",
             model_dir=tmp_path / "n", **kw)  # fmt: skip
    cmd = [sys.executable, "-m", "zoomrl", "active", "test", "--preset", "tiny", "--class-object", "box", "--data",
           str(data / "train"), "--image-set", "trainval", "--model-dir", str(tmp_path / "n"), "--output-dir",
           str(tmp_path / "o"), "--eval-split", "val", "--quiet"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 2 and "needs a run trained with a validation split" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
