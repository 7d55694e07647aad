"""glimpse family end to end: train + test in process (tiny preset), exact resume, the command line's errors, and
one JAX-backend training step in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from zoomrl.experiments.cli import main
from zoomrl.experiments.glimpse import build_parser, run

EAGER = ["--preset", "tiny", "--quiet"]


def cli(command, *argv):
    run(command, build_parser(command).parse_args(list(argv)))


def test_classify_train_and_test_write_results_and_pictures(tmp_path):
    models, out = tmp_path / "m", tmp_path / "r"
    cli("train", *EAGER, "--model-dir", str(models), "--seed", "3")
    for name in ("ram", "random", "cnn", "mlp"):
        assert (models / name / "latest.json").is_file() and (models / name / "config.json").is_file()
    saved = json.loads((models / "ram" / "config.json").read_text())
    assert saved["seed"] == 3 and saved["preset"] == "tiny" and saved["task"] == "classify"
    # The default keeps the last 3 epochs; tiny trains 2.
    assert sorted(p.name for p in (models / "ram").glob("epoch_*")) == ["epoch_1.weights.h5", "epoch_2.weights.h5"]
    cli("test", "--quiet", "--model-dir", str(models), "--output-dir", str(out), "--bool-draw")
    res = json.loads((out / "results.json").read_text())
    assert res["test_size"] == 16 and res["protocol"] == "cluttered60" and res["task"] == "classify"
    assert set(res["models"]) == {"ram", "random", "cnn", "mlp"}
    for name in ("ram", "random"):
        for mode in ("mean_path", "monte_carlo"):
            err = res["models"][name][mode]["error"]
            assert 0.0 <= err <= 1.0 and round(err * 16) == err * 16  # a fraction of 16 images
    assert res["models"]["ram"]["monte_carlo"]["samples"] == 2 and res["models"]["cnn"]["epochs"] == 1
    assert (out / "errors.png").is_file() and sorted(p.name for p in (out / "paths").iterdir()) == [
        "000.png",
        "001.png",
    ]


def test_regress_test_scores_the_centre_baseline_by_hand(tmp_path):
    from zoomrl.data.splits import TaskData
    from zoomrl.experiments.glimpse.config import GlimpseConfig

    models, out = tmp_path / "m", tmp_path / "r"
    cli("train", *EAGER, "--task", "regress", "--model-dir", str(models), "--reward", "binary", "--models", "ram")
    cli("test", "--quiet", "--task", "regress", "--model-dir", str(models), "--output-dir", str(out))
    res = json.loads((out / "results.json").read_text())
    assert set(res["models"]) == {"ram", "centre"} and res["protocol"] == "translated60"
    cfg = GlimpseConfig.load(models / "ram" / "config.json")
    assert cfg.reward == "binary"
    split = TaskData(cfg).test()
    d = np.hypot(split.points[:, 0] - 30.0, split.points[:, 1] - 30.0) / 28.0  # the centre of a 60x60 canvas
    assert np.isclose(res["models"]["centre"]["mean_distance"], d.mean(), rtol=1e-6)
    assert res["models"]["centre"]["detection_rate"]["0.10"] == np.mean(d <= 0.10)
    assert set(res["models"]["ram"]["mean_path"]["detection_rate"]) == {"0.02", "0.04", "0.06", "0.08", "0.10"}
    assert (out / "detection_rates.png").is_file()


def weights(run_dir: Path, epoch: int) -> list[np.ndarray]:
    import h5py

    out = []
    with h5py.File(run_dir / f"epoch_{epoch}.weights.h5", "r") as f:
        f.visititems(lambda name, obj: out.append(np.array(obj)) if isinstance(obj, h5py.Dataset) else None)
    return out


def _as_saved_before_the_run_driver(run_dir: Path) -> None:
    """Rewrite a run folder as glimpse saved it before the run driver: the state holds the agent's arrays only
    (no epoch, meta or history), the history is in latest.json alone."""
    with np.load(run_dir / "training_state.npz") as s:
        arrays = {k: s[k] for k in s.files if k not in ("epoch", "meta", "history")}
    np.savez(run_dir / "training_state.npz", **arrays)
    latest = json.loads((run_dir / "latest.json").read_text())
    latest = {"model": "ram", "history": latest["history"], "epoch": latest["epoch"], "files": latest["files"]}
    (run_dir / "latest.json").write_text(json.dumps(latest))


def test_resume_is_exact_and_keep_checkpoints_is_honoured(tmp_path):
    """Also the fallback read of a run saved before the run driver (``Runner.restore`` completes its state from
    ``latest.json``): without it the driver refuses the old state (no epoch or meta)."""
    from zoomrl.core.config import ConfigError

    common = [*EAGER, "--models", "ram", "--train-size", "32"]
    cli("train", *common, "--model-dir", str(tmp_path / "straight"), "--epochs", "3", "--keep-checkpoints", "1")
    assert [p.name for p in (tmp_path / "straight" / "ram").glob("epoch_*")] == ["epoch_3.weights.h5"]
    split = tmp_path / "split"
    cli("train", *common, "--model-dir", str(split), "--epochs", "2")
    old = tmp_path / "old"  # the same run as saved before glimpse moved onto the core run driver
    shutil.copytree(split, old)
    _as_saved_before_the_run_driver(old / "ram")
    cli("train", *common, "--model-dir", str(split), "--epochs", "3", "--resume")
    cli("train", *common, "--model-dir", str(old), "--epochs", "3", "--resume")
    a, b = weights(tmp_path / "straight" / "ram", 3), weights(split / "ram", 3)
    assert len(a) == len(b) > 0 and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert all(np.array_equal(x, y) for x, y in zip(a, weights(old / "ram", 3)))
    history = json.loads((split / "ram" / "latest.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    # The history too (every logged loss and reward, to the digit), all but each epoch's wall-clock seconds; and
    # the training state (optimizer slots, the model's random generator) that a further resume would start from.
    straight = json.loads((tmp_path / "straight" / "ram" / "latest.json").read_text())["history"]
    timeless = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert timeless(history) == timeless(straight) and {"loss", "reward", "reinforce"} <= set(history[-1])
    with (
        np.load(tmp_path / "straight" / "ram" / "training_state.npz") as sa,
        np.load(split / "ram" / "training_state.npz") as sb,
    ):
        assert sorted(sa.files) == sorted(sb.files) and "seed_state" in sa.files
        for k in sa.files:
            if k == "history":  # the run driver keeps the history here too; its seconds are wall-clock
                assert timeless(json.loads(str(sa[k]))) == timeless(json.loads(str(sb[k]))) == timeless(history)
                continue
            np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)
    # Epoch 3 moved the weights (the check is not vacuous).
    assert not all(np.array_equal(x, y) for x, y in zip(weights(split / "ram", 2), b))
    with pytest.raises(ConfigError, match=r"--resume: glimpses=2 \(run has 3\) differ"):
        cli("train", *common, "--model-dir", str(split), "--epochs", "4", "--resume", "--glimpses", "2")


def test_command_line_errors_are_one_line(tmp_path, capsys):
    assert main(["glimpse", "train", "--preset", "tiny", "--models", "ram,foo", "--model-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: models must be one of")
    assert main(["glimpse", "test", "--model-dir", str(tmp_path / "none")]) == 2
    assert "no trained model" in capsys.readouterr().err


def test_mnist_dataset_uses_the_loader(tmp_path, monkeypatch):
    from zoomrl.data import splits as data
    from zoomrl.experiments.glimpse.config import make_config

    rng = np.random.default_rng(0)
    arrays = (
        (rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), np.arange(20) % 10),
        (rng.integers(0, 256, (7, 28, 28), dtype=np.uint8), np.arange(7)),
    )
    monkeypatch.setattr(data, "MNIST_LOADER", lambda: arrays)
    gd = data.TaskData(make_config("tiny", "classify", dataset="mnist", test_size=0, train_size=10))
    test = gd.test()
    assert test.images.shape == (7, 60, 60, 1) and np.array_equal(test.targets, np.arange(7))
    assert len(gd.train_epoch(0)) == 10


def test_jax_backend_one_training_step():
    code = (
        "import numpy as np\n"
        "from zoomrl.agents.base import LabelledBatch\n"
        "from zoomrl.agents.ram.agent import RamAgent\n"
        "import keras\n"
        "assert keras.backend.backend() == 'jax'\n"
        "a = RamAgent((16, 16, 1), task='classify', n_outputs=10, glimpses=2, glimpse_size=4, scales=2,\n"
        "             glimpse_hidden=8, loc_hidden=8, glimpse_units=8, core_units=8)\n"
        "x = np.random.default_rng(0).random((8, 16, 16), dtype=np.float32)\n"
        "before = [np.array(w) for w in a.weights()]\n"
        "logs = a.learn(LabelledBatch(x, np.arange(8)))\n"
        "after = a.weights()\n"
        "assert np.isfinite(logs['loss']), logs\n"
        "assert any(not np.array_equal(b, c) for b, c in zip(before, after))\n"
        "print('ok', logs['loss'])\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("ok")


def test_help_shows_the_values_in_force_for_the_preset_and_task_given(capsys):
    """``--help`` is made for the ``--preset`` and ``--task`` on the command line: fast2's regression values (the
    conv glimpse network, 8 glimpses, flips; taken from ``TASK_PRESETS``), not the default fast/classify ones.
    Mutation caught: ``PresetAwareParser`` parsing with the parser made for the defaults."""
    for argv, shown in (
        ([], ("fast: 'fc'", "fast: 6", "fast: False")),
        (["--preset", "fast2", "--task", "regress"], ("fast2: 'conv'", "fast2: 8", "fast2: True")),
    ):
        with pytest.raises(SystemExit):
            build_parser("train").parse_args([*argv, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for flag, value in zip(("--glimpse-net GLIMPSE_NET", "--glimpses GLIMPSES", "--no-augment-flip"), shown):
            assert text.split(f" {flag} ")[1].split(" --")[0].endswith(f"(default: the preset's; {value})")


def test_old_boolean_spelling_still_reads_with_one_line(capsys):
    from zoomrl.experiments.glimpse.cli import train_config

    args = build_parser("train").parse_args(["--preset", "fast2", "--logp-unclipped", "false", "--augment-flip=no"])
    assert (args.logp_unclipped, args.augment_flip) == (False, False)
    assert capsys.readouterr().err.splitlines() == [
        "note: --logp-unclipped false is deprecated, use --no-logp-unclipped",
        "note: --augment-flip no is deprecated, use --no-augment-flip",
    ]
    cfg = train_config(build_parser("train").parse_args(["--task", "regress", "--augment-flip", "--xla", "0"]))
    assert (cfg.augment_flip, cfg.xla, cfg.logp_unclipped) == (True, False, False)  # fast's logp_unclipped


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny RAM and CNN, trained once with seed 4 (a uniform first glimpse: the mean path draws too)."""
    models = tmp_path_factory.mktemp("glimpse") / "m"
    cli("train", *EAGER, "--models", "ram,cnn", "--model-dir", str(models), "--seed", "4")
    return models


def test_test_time_seed_seeds_the_test_draws_alone(tiny_run, tmp_path):
    """``--seed`` at test time defaults to the run's (4), which draws with the seeds every earlier test used (7 for
    the first glimpses and the mean path, 11 for the Monte-Carlo paths); seed 6 with 207 and 211, computed here by
    hand through ``evaluate``. The CNN draws nothing: its scores never move. Mutations caught: the test seed
    ignored (the seeds fixed at 7 and 11), its default not the run's (0)."""
    from zoomrl.agents.ram.agent import build_agent
    from zoomrl.core.runner import WEIGHTS
    from zoomrl.data.splits import TaskData
    from zoomrl.eval.ram import evaluate
    from zoomrl.experiments.glimpse.config import GlimpseConfig

    results = {}
    for name, argv in (("default", []), ("4", ["--seed", "4"]), ("6", ["--seed", "6"])):
        cli("test", "--quiet", "--model-dir", str(tiny_run), "--output-dir", str(tmp_path / name), *argv)
        results[name] = json.loads((tmp_path / name / "results.json").read_text())["models"]
    assert results["default"] == results["4"]
    assert results["6"]["cnn"] == results["4"]["cnn"]
    cfg = GlimpseConfig.load(tiny_run / "ram" / "config.json")
    data = TaskData(cfg)
    agent = build_agent("ram", cfg, data.image_shape(), data.n_outputs, cfg.task, cfg.seed)
    latest = json.loads((tiny_run / "ram" / "latest.json").read_text())
    agent.load_weights(tiny_run / "ram" / latest["files"][WEIGHTS])
    for name, seeds in (("4", (7, 11)), ("6", (207, 211))):
        scores, _ = evaluate("ram", agent, data.test(), cfg, seeds)
        assert {k: results[name]["ram"][k] for k in scores} == scores, name
    # not vacuous: the two seeds' draws differ (mean path from other first glimpses, other Monte-Carlo paths)
    probs = [evaluate("ram", agent, data.test(), cfg, s)[1][0] for s in ((7, 11), (207, 211))]
    assert not np.array_equal(probs[0], probs[1])


def test_test_reads_the_saved_configuration(tiny_run, tmp_path, capsys):
    """Only the test settings change at test time: another ``--preset`` or ``--task`` is a one-line error (exit 2),
    the run's own is accepted, a training flag is refused by the parser."""
    out = ["--model-dir", str(tiny_run), "--output-dir", str(tmp_path / "r"), "--quiet"]
    assert main(["glimpse", "test", *out, "--preset", "fast"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: --preset fast: the run in {tiny_run / 'ram'} was trained with --preset tiny (a test reads "
        "its saved configuration; drop --preset)"
    ]
    assert main(["glimpse", "test", *out, "--task", "regress"]) == 2
    assert "was trained with --task classify" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        build_parser("test").parse_args([*out, "--glimpses", "2"])
    assert exc.value.code == 2
    capsys.readouterr()
    text = " ".join(build_parser("test").format_help().split())
    assert (
        "--mc-samples MC_SAMPLES Paths sampled per test image for the Monte-Carlo evaluation (default: the run's)"
        in text
    )
    assert main(["glimpse", "test", *out, "--preset", "tiny", "--models", "cnn", "--test-size", "8"]) == 0
    res = json.loads((tmp_path / "r" / "results.json").read_text())
    assert set(res["models"]) == {"cnn"} and res["test_size"] == 8


def test_test_takes_every_model_trained_in_the_folder(tmp_path, capsys):
    """Models trained one command each (as docs/glimpse.md advises) are all tested without ``--models``; a folder
    whose models were trained differently (another seed) is refused in one line, unless ``--models`` picks.
    Mutation caught: the saved ``models`` of the first model's config (``ram``) used as the default."""
    models = tmp_path / "m"
    cli("train", *EAGER, "--models", "ram", "--model-dir", str(models), "--seed", "4")
    cli("train", *EAGER, "--models", "cnn", "--model-dir", str(models), "--seed", "4")
    cli("test", "--quiet", "--model-dir", str(models), "--output-dir", str(tmp_path / "r"))
    assert set(json.loads((tmp_path / "r" / "results.json").read_text())["models"]) == {"ram", "cnn"}
    cli("train", *EAGER, "--models", "random", "--model-dir", str(models), "--seed", "5")
    out = ["--quiet", "--model-dir", str(models), "--output-dir", str(tmp_path / "r2")]
    assert main(["glimpse", "test", *out]) == 2
    assert "trained with seed=5" in capsys.readouterr().err
    assert main(["glimpse", "test", *out, "--models", "ram,random"]) == 0
    assert set(json.loads((tmp_path / "r2" / "results.json").read_text())["models"]) == {"ram", "random"}
