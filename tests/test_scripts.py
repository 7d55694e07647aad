"""Smoke runs of the four top-level scripts (random backbone weights, a few tiny images) and their errors.

The scripts run in process (their constants block read with ``runpy``, then the same ``script_main`` call their
``__main__`` makes), which saves a Keras start-up per run; ``test_help_lists_flags_with_defaults`` runs one as a
real subprocess."""

import contextlib
import io
import json
import os
import runpy
import subprocess
import sys
from types import SimpleNamespace

import pytest

from conftest import REPO, square_task, write_voc
from zoomrl.experiments.cli import script_main

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
TINY = ["--preset", "tiny", "--weights", "none", "--class-object", "box", "--number-of-steps", "3", "--quiet"]


def run(script, *args, cwd):
    """Run a top-level script in process; returns an object like ``subprocess.run``'s."""
    constants = runpy.run_path(str(REPO / script), run_name="zoomrl_script")
    model = "image_zooms" if script.startswith("image_zooms") else "pool45_crops"
    command = "train" if "training" in script else "test"
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = script_main("hierarchical", command, {**constants, "MODEL": model}, list(args))
            except SystemExit as exc:  # argparse
                rc = exc.code
    finally:
        os.chdir(old)
    return SimpleNamespace(returncode=rc, stdout=out.getvalue(), stderr=err.getvalue())


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("voc")
    write_voc(root, square_task(3, seed=0), image_set="trainval")
    (root / "ImageSets" / "Main" / "test.txt").write_text("sq000\nsq001\n")
    return root


@pytest.mark.parametrize("variant", ["image_zooms", "pool45_crops"])
def test_train_then_test_smoke(variant, data, tmp_path):
    models = tmp_path / "models"
    out = run(
        f"{variant}_training.py", *TINY, "--data", str(data), "--model-dir", str(models), "--epochs", "2", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "epoch 2/2: reward" in out.stdout and "RANDOMLY initialised" in out.stdout
    run_dir = models / "box"
    for name in (
        "config.json",
        "epoch_1.weights.h5",
        "epoch_2.weights.h5",
        "training_state.npz",
        "latest.json",
        "training_curves.png",
    ):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "config.json").read_text())["variant"] == variant
    assert not list(run_dir.glob("*.tmp*"))  # nothing half-written left behind

    res = run(
        f"{variant}_testing.py",
        *TINY,
        "--data",
        str(data),
        "--image-set",
        "test",
        "--model-dir",
        str(models),
        "--output-dir",
        str(tmp_path / "results"),
        "--bool-draw",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    out_dir = tmp_path / "results" / "box"
    results = json.loads((out_dir / "results.json").read_text())
    assert results["n_images"] == 2 and results["config"]["variant"] == variant
    assert {"agent", "random", "upper_bound"} <= set(results)
    scores = results["agent_by_score"]
    assert set(scores) == {"trigger_q", "trigger_advantage", "trigger_probability", "trigger_order"}
    assert results["agent"]["ap_area"] == scores[results["score"]]["ap_area"]
    searches = [s for r in json.loads((out_dir / "detections.json").read_text())["images"] for s in r["searches"]]
    for s in searches:  # the default score is the trigger's Q-value of the last step
        if s["triggered"]:
            assert s["score"] == pytest.approx(s["q_values"][-1][s["actions"][-1]])
    detections = json.loads((out_dir / "detections.json").read_text())
    assert [r["image_id"] for r in detections["images"]] == ["sq000", "sq001"]
    for name in ("pr_curve.png", "recall_vs_windows.png", "windows_per_object.png", "pictures/sq000.png"):
        assert (out_dir / name).stat().st_size > 1000, name
    assert "upper bound 0.75" in res.stdout and "whole image" in res.stdout
    assert results["whole_image"]["n_detections"] == 2  # one whole-image detection per test image
    # --score picks the detection score; one the network cannot give is refused in one line
    bad = run(
        f"{variant}_testing.py",
        *TINY,
        "--data",
        str(data),
        "--image-set",
        "test",
        "--model-dir",
        str(models),
        "--output-dir",
        str(tmp_path / "results2"),
        "--score",
        "predicted_iou",
        "--no-baselines",
        cwd=tmp_path,
    )
    assert bad.returncode == 2 and "predicted_iou needs a network trained with --iou-weight" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1

    again = run(
        f"{variant}_training.py",
        *TINY,
        "--data",
        str(data),
        "--model-dir",
        str(models),
        "--epochs",
        "3",
        "--resume",
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert "continuing" in again.stdout and "epoch 3/3" in again.stdout and "epoch 1/3" not in again.stdout


def _error(proc):
    assert proc.returncode == 2, (proc.stdout[-500:], proc.stderr[-1500:])
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    return lines[0]


def test_errors_are_one_line(data, tmp_path):
    msg = _error(run("image_zooms_training.py", *TINY, "--data", str(tmp_path / "nowhere"), cwd=tmp_path))
    assert "nowhere does not exist" in msg and "Annotations/" in msg
    msg = _error(
        run("image_zooms_training.py", *TINY[:-3], "--class-object", "aeroplane", "--data", str(data), cwd=tmp_path)
    )
    assert "class 'aeroplane'" in msg and "classes present: box" in msg
    msg = _error(
        run(
            "image_zooms_training.py",
            "--preset",
            "tiny",
            "--class-object",
            "box",
            "--data",
            str(data),
            "--weights",
            str(tmp_path / "missing.h5"),
            cwd=tmp_path,
        )
    )
    assert "missing.h5: no such file" in msg
    msg = _error(
        run(
            "image_zooms_testing.py",
            *TINY,
            "--data",
            str(data),
            "--image-set",
            "test",
            "--checkpoint",
            str(tmp_path / "none.weights.h5"),
            cwd=tmp_path,
        )
    )
    assert "none.weights.h5: no such checkpoint" in msg


def test_checkpoint_of_another_variant_or_size_is_refused(data, tmp_path):
    models = tmp_path / "m"
    out = run(
        "pool45_crops_training.py",
        *TINY,
        "--data",
        str(data),
        "--model-dir",
        str(models),
        "--epochs",
        "1",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    ckpt = models / "box" / "epoch_1.weights.h5"
    msg = _error(
        run(
            "image_zooms_testing.py",
            *TINY,
            "--data",
            str(data),
            "--image-set",
            "test",
            "--checkpoint",
            str(ckpt),
            cwd=tmp_path,
        )
    )
    assert "variant=pool45_crops" in msg and "variant=image_zooms" in msg
    lone = tmp_path / "lone.weights.h5"
    lone.write_bytes(ckpt.read_bytes())  # no config.json beside it: the shape check speaks
    msg = _error(
        run(
            "pool45_crops_testing.py",
            "--preset",
            "paper",
            "--weights",
            "none",
            "--class-object",
            "box",
            "--quiet",
            "--data",
            str(data),
            "--image-set",
            "test",
            "--checkpoint",
            str(lone),
            cwd=tmp_path,
        )
    )
    assert "does not fit a Q-network" in msg and "1024 hidden units" in msg
    msg = _error(
        run(
            "image_zooms_training.py",
            *TINY,
            "--data",
            str(data),
            "--model-dir",
            str(models),
            "--epochs",
            "2",
            "--resume",
            cwd=tmp_path,
        )
    )
    assert "variant='image_zooms' (run has 'pool45_crops')" in msg


def test_help_lists_flags_with_defaults():
    out = subprocess.run(
        [sys.executable, str(REPO / "image_zooms_testing.py"), "--help"], capture_output=True, text=True, env=ENV
    )
    for flag in (
        "--data",
        "--image-set",
        "--class-object",
        "--number-of-steps",
        "--scale-subregion",
        "--weights",
        "--model-dir",
        "--output-dir",
        "--max-images",
        "--seed",
        "--bool-draw",
        "--only-first-object",
        "--skip-bad",
    ):
        assert flag in out.stdout
    assert "(default: the preset's; paper: 'seven')" in " ".join(out.stdout.split())  # the value in force


def test_benchmark_script_writes_its_json(data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "bench.json"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "benchmark.py",
            "--data",
            str(data),
            "--class-object",
            "box",
            "--image-set",
            "test",
            "--weights",
            "none",
            "--images",
            "2",
            "--test-batch",
            "2",
            "--models",
            "pool45_crops",
            "--output",
            str(out),
            "--repeats",
            "3",
        ],
    )
    monkeypatch.chdir(tmp_path)
    from zoomrl.experiments.bench import hierarchical

    # three rounds, each timing the bare backbone, then the test: the best of each is kept, neither the first nor
    # the last (rates 2, 4, 3 images/s; tests of 5, 4, 6 s)
    rates, seconds = iter([2.0, 4.0, 3.0]), iter([5.0, 4.0, 6.0])
    real_test = hierarchical._timed_test

    def timed_test(*args):
        records, _, units = real_test(*args)
        return records, next(seconds), units

    monkeypatch.setattr(hierarchical, "_backbone_throughput", lambda *a: next(rates))
    monkeypatch.setattr(hierarchical, "_timed_test", timed_test)
    main = runpy.run_path(str(REPO / "scripts" / "benchmark.py"), run_name="zoomrl_script")["main"]
    assert main() == 0
    proc = SimpleNamespace(stdout=capsys.readouterr().out)
    result = json.loads(out.read_text())
    m = result["models"]["pool45_crops"]
    assert m["backbone_unit"] == "images" and m["test_images"] == 2 and m["backbone_only_per_second"] > 0
    assert m["train_epoch_seconds_warm"] > 0 and m["timing_rounds"] == 3
    assert m["backbone_only_per_second"] == 4.0 and m["test_images_per_second"] == 2 / 4.0
    # the backbone's seconds for the test's backbone images at the best rate, over the best test time
    assert m["test_ratio_to_backbone_bound"] == pytest.approx(m["test_backbone_units"] / 4.0 / 4.0, abs=1e-3)
    assert m["test_backbone_units"] > 0
    assert result["backend"] == "tensorflow" and "testing / backbone bound" in proc.stdout


def test_score_ranking_script_scores_triggers_by_their_order_in_the_image(tmp_path, capsys, monkeypatch):
    """``scripts/score_ranking.py``: image a triggers a hit (margin 5) then a miss (margin 9), image b a hit
    (margin -2). By the margin the miss ranks first (AP 2/3, by hand); by order both hits come first (AP 1), and a
    hit outscores the miss with probability 1 (AUC), against 0 by the margin."""

    def search(margin: float, box: list[float]) -> dict:
        return {"triggered": True, "box": box, "actions": [5], "q_values": [[0, 0, 0, 0, 0, margin]], "steps": 1}

    gt = [{"box": [0, 0, 10, 10], "difficult": False}]
    images = [
        {"image_id": "a", "ground_truth": gt, "searches": [search(5.0, [0, 0, 10, 10]), search(9.0, [50, 50, 60, 60])]},
        {"image_id": "b", "ground_truth": gt, "searches": [search(-2.0, [0, 0, 10, 10])]},
    ]
    path = tmp_path / "detections.json"
    path.write_text(json.dumps({"images": images}))
    monkeypatch.setattr(sys, "argv", ["score_ranking.py", str(path)])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO / "scripts" / "score_ranking.py"), run_name="__main__")
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "trigger_advantage    AUC hits vs near misses nan   hits vs all misses 0.00" in out
    assert "trigger_order        AUC hits vs near misses nan   hits vs all misses 1.00" in out
    assert "trigger_advantage 0.667" in out and "trigger_order 1.000" in out


def test_benchmark_script_refuses_no_timing_rounds(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["benchmark.py", "--repeats", "0", "--output", str(tmp_path / "b.json")])
    main = runpy.run_path(str(REPO / "scripts" / "benchmark.py"), run_name="zoomrl_script")["main"]
    assert main() == 2
    assert capsys.readouterr().err.strip() == "error: --repeats must be at least 1; received 0"
    assert not (tmp_path / "b.json").exists()


def test_benchmark_script_times_image_zooms_batch_one_as_often_as_batched(data, tmp_path, monkeypatch):
    """The batched and the batch-1 tests are each the best of their timings, so their ratio compares like with like:
    by hand, the best batched test is 4 s (of 5, 4 and 6), the best batch-1 test 8 s (of 9, 8 and 10), so 2 times."""
    out = tmp_path / "bench.json"
    argv = ["benchmark.py", "--data", str(data), "--class-object", "box", "--weights", "none", "--images", "2"]
    argv += ["--test-batch", "2", "--models", "image_zooms", "--output", str(out), "--repeats", "3"]
    argv += ["--backbone-batch", "2", "--preset", "tiny"]  # seconds: few backbone-only windows, a short epoch
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.chdir(tmp_path)
    from zoomrl.experiments.bench import hierarchical

    seconds = {2: iter([5.0, 4.0, 6.0]), 1: iter([9.0, 8.0, 10.0])}  # by the test's lockstep batch
    real_test = hierarchical._timed_test
    batched: list = []

    def timed_test(features, agent, images, store, config, batch):
        if batch == 1:  # the batched run's records stand in for batch 1's (the same actions: tested elsewhere)
            return batched[-1][0], next(seconds[1]), batched[-1][2]
        batched.append(real_test(features, agent, images, store, config, batch))
        return batched[-1][0], next(seconds[batch]), batched[-1][2]

    monkeypatch.setattr(hierarchical, "_timed_test", timed_test)
    main = runpy.run_path(str(REPO / "scripts" / "benchmark.py"), run_name="zoomrl_script")["main"]
    assert main() == 0
    m = json.loads(out.read_text())["models"]["image_zooms"]
    assert m["test_images_per_second"] == 2 / 4.0 and m["test_batch1_images_per_second"] == 2 / 8.0
    assert m["batched_speedup_over_batch1"] == 2.0 and m["batched_results_identical_to_batch1"] is True
