"""Run folders: the checkpointer (sentinel, keep-N, best), the run lock, and every damaged run file or
mismatched resume ending in one line (issue 9, "run files")."""

import json
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO, TinyFeatures, square_task, write_voc
from zoomrl.agents.dqn.checkpoint import CheckpointError, stash_previous_run
from zoomrl.core.checkpoint import Checkpointer, RunLock, RunLockedError, parse_keep, read_latest
from zoomrl.core.config import ConfigError
from zoomrl.core.io import FileDamagedError
from zoomrl.experiments.hierarchical.config import make_config
from zoomrl.experiments.hierarchical.test import test as run_test
from zoomrl.experiments.hierarchical.train import train


def _writer(text):
    return lambda p: p.write_text(text)


def test_checkpointer_keeps_the_last_n_and_the_best(tmp_path):
    ck = Checkpointer(tmp_path, keep=2, metric="success")
    for epoch, score in zip(range(1, 6), [0.1, 0.9, 0.3, 0.2, 0.4]):
        ck.save(epoch, {"weights.h5": _writer(f"w{epoch}")}, {"state.npz": _writer(f"s{epoch}")}, score=score)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "best.json",
        "best.weights.h5",
        "epoch_4.weights.h5",
        "epoch_5.weights.h5",
        "latest.json",
        "state.npz",
    ]
    assert (tmp_path / "best.weights.h5").read_text() == "w2"  # epoch 2 scored best, its file outlived pruning
    assert json.loads((tmp_path / "best.json").read_text())["epoch"] == 2
    assert read_latest(tmp_path)["epoch"] == 5 and (tmp_path / "state.npz").read_text() == "s5"
    every = Checkpointer(tmp_path / "all", keep=parse_keep("all"))
    for epoch in range(1, 5):
        every.save(epoch, {"weights.h5": _writer("w")})
    assert len(list((tmp_path / "all").glob("epoch_*"))) == 4
    with pytest.raises(ValueError, match="positive integer or 'all'"):
        parse_keep("0")


def test_interrupted_write_leaves_the_last_checkpoint_whole(tmp_path):
    ck = Checkpointer(tmp_path, keep=3)
    ck.save(1, {"weights.h5": _writer("w1")}, {"state.npz": _writer("s1")})

    def dies(p):
        p.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ck.save(2, {"weights.h5": _writer("w2")}, {"state.npz": dies})
    assert read_latest(tmp_path)["epoch"] == 1  # the sentinel still names epoch 1 ...
    assert (tmp_path / "state.npz").read_text() == "s1"  # ... whose files are untouched
    assert not list(tmp_path.glob(".*tmp*"))  # and no temporary is left


def test_temporaries_of_a_killed_run_are_removed_by_the_next(tmp_path):
    # A writer killed with SIGKILL cannot clean up: simulate its leftover, then take the folder's lock.
    (tmp_path / ".epoch_3.weights.h5.abc123.tmp.weights.h5").write_text("partial")
    (tmp_path / "epoch_2.weights.h5").write_text("kept")
    with RunLock(tmp_path):
        pass
    assert [p.name for p in tmp_path.iterdir() if p.name != ".lock"] == ["epoch_2.weights.h5"]


def test_second_run_in_the_same_folder_is_refused(tmp_path):
    code = textwrap.dedent(f"""
        import sys, time
        from zoomrl.core.checkpoint import RunLock
        with RunLock({str(tmp_path)!r}):
            print("locked", flush=True)
            time.sleep(30)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match="another run is writing into this folder"):
            RunLock(tmp_path).acquire()
    finally:
        proc.kill()
        proc.wait()
    RunLock(tmp_path).acquire().release()  # the dead run's lock went with it


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("sq")
    write_voc(root, square_task(6, seed=0), image_set="trainval")
    (root / "ImageSets" / "Main" / "test.txt").write_text("sq000\nsq001\n")
    return root


def _cfg(**kw):
    values = dict(class_object="box", hidden_units=16, number_of_steps=3, epochs=2, minibatch=8, learning_starts=8)
    values.update(kw)
    return make_config("tiny", **values)


def _train(data, models, **kw):
    cfg = _cfg(**{k: v for k, v in kw.items() if k not in ("resume",)})
    return train(
        cfg,
        [data],
        "trainval",
        models,
        features=TinyFeatures(),
        log=lambda m: None,
        show_progress=False,
        resume=kw.get("resume", False),
    )


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    models = tmp_path_factory.mktemp("trained")
    _train(data, models)
    return models / "box"


@pytest.fixture
def run(trained, tmp_path):
    """A fresh copy of a finished 2-epoch run, for a test to damage."""
    import shutil

    dest = tmp_path / "models" / "box"
    shutil.copytree(trained, dest, ignore=shutil.ignore_patterns(".lock"))
    return dest


def test_resume_with_a_changed_hyperparameter_is_refused(data, run):
    with pytest.raises(ConfigError, match=r"learning_rate=0\.01 \(run has 0\.0001\)"):
        _train(data, run.parent, epochs=3, learning_rate=1e-2, resume=True)
    with pytest.raises(ConfigError, match="number_of_steps=4"):
        _train(data, run.parent, epochs=3, number_of_steps=4, resume=True)
    out = _train(data, run.parent, epochs=3, resume=True)  # only epochs may grow
    assert len(out["history"]) == 3


@pytest.mark.parametrize(
    "name, damage, match",
    [
        ("training_state.npz", b"", "damaged or truncated training state"),
        ("training_state.npz", "truncate", "damaged or truncated training state"),
        ("latest.json", b'{"epoch": 2, "wei', "damaged checkpoint sentinel, not valid JSON"),
        ("config.json", b"", "damaged configuration, not valid JSON"),
        ("epoch_2.weights.h5", "truncate", "epoch_2.weights.h5: damaged or truncated weights file"),
    ],
)
def test_damaged_run_files_name_themselves_on_resume(data, run, name, damage, match):
    path = run / name
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2] if damage == "truncate" else damage)
    with pytest.raises((CheckpointError, FileDamagedError), match=match) as info:
        _train(data, run.parent, epochs=3, resume=True)
    assert str(path) in str(info.value) or name in str(info.value)


def test_weights_of_another_model_refused_even_without_config(data, run, tmp_path):
    lone = tmp_path / "lone.weights.h5"
    lone.write_bytes((run / "epoch_2.weights.h5").read_bytes())  # no config.json beside it: its own meta speaks
    cfg = _cfg(variant="pool45_crops")
    with pytest.raises(CheckpointError, match="variant=image_zooms, this run has variant=pool45_crops"):
        run_test(
            cfg,
            [data],
            "test",
            lone,
            tmp_path / "out",
            features=TinyFeatures(),
            log=lambda m: None,
            show_progress=False,
            baselines=False,
        )
    with pytest.raises(CheckpointError, match="scale-subregion 0.75, this test asks for 0.5"):
        run_test(
            _cfg(scale_subregion=0.5),
            [data],
            "test",
            run / "epoch_2.weights.h5",
            tmp_path / "out",
            features=TinyFeatures(),
            log=lambda m: None,
            show_progress=False,
            baselines=False,
        )


def test_new_run_keeps_the_old_one_until_its_first_epoch_is_saved(data, run):
    before = (run / "epoch_2.weights.h5").read_bytes()
    stash_previous_run(run, lambda m: None)  # what a fresh run does first ...
    prev = run / "previous_run"
    assert (prev / "latest.json").is_file() and (prev / "epoch_2.weights.h5").read_bytes() == before
    assert read_latest(run) is None  # ... so if it dies now, the old run is whole in previous_run/
    _train(data, run.parent, epochs=1)  # and once its first epoch is saved, the old one goes
    assert not prev.exists() and read_latest(run)["epoch"] == 1
    assert json.loads((run / "config.json").read_text())["epochs"] == 1


def test_epochs_zero_writes_nothing(data, tmp_path):
    out = _train(data, tmp_path / "m", epochs=0)
    assert out["weights"] is None and "nothing written" in out["summary"]
    assert not (tmp_path / "m" / "box" / "latest.json").exists()


def test_non_finite_loss_stops_naming_the_epoch(data, tmp_path):
    with pytest.raises(ValueError, match=r"epoch 1: non-finite DQN loss .* at update \d+"):
        _train(data, tmp_path / "m", learning_rate=1e30, epochs=1, descriptor_scale=1e30)
    assert not (tmp_path / "m" / "box" / "latest.json").exists()


def test_sigterm_is_an_interrupt_with_one_line(tmp_path):
    code = textwrap.dedent("""
        import os, signal, time
        from zoomrl.experiments.common import run_guarded
        def work():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        raise SystemExit(run_guarded(work, "train"))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 130
    assert proc.stderr.strip() == "interrupted: the last finished epoch's checkpoint is intact (continue with --resume)"
    proc = subprocess.run(
        [sys.executable, "-c", code.replace('"train"', '"test"')], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert "--resume" not in proc.stderr and proc.returncode == 130


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--learning-rate", "nan"], "learning_rate must be finite"),
        (["--learning-rate", "-0.1"], r"learning_rate must lie in \(0"),
        (["--max-images", "0"], "expected a positive integer, received '0'"),
        (["--double-dqn", "--target-update-every", "0"], "double_dqn needs a target network"),
        (["--keep-checkpoints", "0"], "expected a positive integer"),
    ],
)
def test_nonsense_values_are_one_line(argv, match, tmp_path, capsys):
    from zoomrl.experiments.cli import main

    try:
        rc = main(
            [
                "hierarchical",
                "train",
                "--preset",
                "tiny",
                "--weights",
                "none",
                "--model-dir",
                str(tmp_path),
                "--quiet",
                *argv,
            ]
        )
    except SystemExit as exc:  # argparse's own refusals
        rc = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len([e for e in err if "error" in e]) == 1, err
    assert any(__import__("re").search(match, e) for e in err), err


def test_preset_steps_not_overridden_by_the_scripts_default():
    import runpy

    from zoomrl.experiments.hierarchical.cli import build_parser, make_run_config

    constants = runpy.run_path(str(REPO / "image_zooms_training.py"), run_name="x")
    assert constants["NUMBER_OF_STEPS"] == 10
    args = build_parser("train", {**constants, "MODEL": "image_zooms"}).parse_args(["--preset", "tiny"])
    assert make_run_config(args).number_of_steps == 4  # the tiny preset's, not the script's 10
    args = build_parser("train", {**constants, "NUMBER_OF_STEPS": 7}).parse_args(["--preset", "tiny"])
    assert make_run_config(args).number_of_steps == 7  # an edited constant wins
