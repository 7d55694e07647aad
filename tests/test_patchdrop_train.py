"""PatchDrop end to end on the tiny preset, in process, through the core run driver: the stages as one run,
``--stage N`` (retraining from the end of stage N - 1), ``--resume`` after finished stages, exact resume after an
interruption inside a stage, the test command's outputs and settings, and one-line errors.

Mutations tried by hand, and the test that caught each:

* the agents' states not restored on resume (``set_state`` skipped in ``stages.restore_agents``): both
  ``test_exact_resume_inside_*``;
* the update counter not restored by ``PatchDropAgent.set_state`` (alpha anneals):
  ``test_exact_resume_inside_the_policy_curve_stage``;
* the schedule call removed from ``stages.stage_agents``: ``test_exact_resume_inside_the_policy_curve_stage``;
* the fields ``--stage N`` may change taken from every stage: ``test_stage_n_retrains_from_...``;
* the test-time ``--seed`` ignored (the saved one used): ``test_test_reads_the_saved_config_and_seeds_only_itself``.
"""

import json
import shutil

import numpy as np
import pytest

from zoomrl.agents.patchdrop.stages import read_groups
from zoomrl.core.checkpoint import read_latest
from zoomrl.core.config import ConfigError
from zoomrl.experiments.patchdrop.config import make_config
from zoomrl.experiments.patchdrop.train import PatchDropTrainee, train

QUIET = dict(quiet=True, log=lambda m: None)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """Stages 1 and 2 of the tiny preset (epochs 1 and 2 of the run), by ``--stage 1`` then ``--stage 2``."""
    root = tmp_path_factory.mktemp("pd") / "model"
    for stage in ("classifiers", "pretrain"):
        train(make_config("tiny"), root, stage, **QUIET)
    return root


def _groups(run):
    return read_groups(run / read_latest(run)["files"]["weights.h5"])


def _same_groups(a, b, names=None):
    ga, gb = a[0] if isinstance(a, tuple) else a, b[0] if isinstance(b, tuple) else b
    names = sorted(ga) if names is None else names
    assert names and set(names) <= set(ga) and set(names) <= set(gb)
    for n in names:
        assert len(ga[n]) == len(gb[n]) > 0
        for x, y in zip(ga[n], gb[n]):
            np.testing.assert_array_equal(x, y, err_msg=n)


def _states_equal(a, b):
    with np.load(a / "training_state.npz") as sa, np.load(b / "training_state.npz") as sb:
        assert sorted(sa.files) == sorted(sb.files)
        for k in sa.files:
            np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


def _interrupt_after(monkeypatch, epoch):
    """Ctrl-C once the run's 1-based ``epoch`` is saved (the driver saves, then the next epoch is interrupted)."""
    original = PatchDropTrainee.run_epoch

    def run_epoch(self, e, progress):
        if e == epoch:
            raise KeyboardInterrupt
        return original(self, e, progress)

    monkeypatch.setattr(PatchDropTrainee, "run_epoch", run_epoch)


def test_one_run_equals_stage_by_stage_runs(pretrained, tmp_path):
    """Stages 1 and 2 in one run give the networks of `--stage 1` then `--stage 2` (the fixture): a stage's fresh
    weights depend on (seed, stage) alone. The run folder is the driver's: one sentinel, one history."""
    run = tmp_path / "m"
    train(make_config("tiny", finetune_epochs=0, two_stream_epochs=0), run, **QUIET)
    g, finished = _groups(run)
    assert finished == ["classifiers", "pretrain"] == _groups(pretrained)[1]
    assert sorted(g) == ["classifiers/hr", "classifiers/lr", "pretrain/sigma0.5/policy", "pretrain/sigma2/policy"]
    _same_groups(g, _groups(pretrained))
    latest = read_latest(run)
    assert latest["epoch"] == 2 and latest["files"] == {"weights.h5": "epoch_2.weights.h5"}
    history = json.loads(str(np.load(run / "training_state.npz")["history"]))
    assert [(h["epoch"], h["stage"], h["stage_epoch"]) for h in history] == [(1, "classifiers", 1), (2, "pretrain", 1)]
    assert (run / "tensorboard").is_dir() and (run / "config.json").is_file()
    assert (run / "training_curves.png").read_bytes()[:4] == b"\x89PNG"  # the learning curves, after every epoch


def test_resume_continues_after_finished_stages_then_test(pretrained, tmp_path):
    from zoomrl.agents.patchdrop.agent import PatchDropAgent, forward
    from zoomrl.agents.patchdrop.evaluate import THRESHOLDS, pick_threshold
    from zoomrl.data.patch_digits import load_for
    from zoomrl.experiments.patchdrop.test import run_test

    run = tmp_path / "model"
    shutil.copytree(pretrained, run)
    lines = []
    train(make_config("tiny"), run, resume=True, quiet=True, log=lines.append)
    assert f"resume: continuing {run} after epoch 2" in lines
    g, finished = _groups(run)
    assert finished == ["classifiers", "pretrain", "finetune", "two_stream"] and read_latest(run)["epoch"] == 5
    _same_groups(g, _groups(pretrained), ["classifiers/hr", "classifiers/lr", "pretrain/sigma2/policy"])

    out = tmp_path / "results"
    cfg = make_config("tiny")
    saved = run_test(cfg, run, out, bool_draw=True, quiet=True, log=lambda m: None)
    assert json.loads((out / "results.json").read_text())["finetuned"] == saved["finetuned"]
    assert saved["test_images"] == 24 and [r["sigma"] for r in saved["policy_curve"]] == [0.5, 2.0]
    for key in ("finetuned", "two_stream"):
        assert len(saved[key]["random_accuracy_draws"]) == 2
    # the fine-tuned row, recomputed independently: stage 3's policy (greedy) and HR classifier on masked images
    images, labels = load_for(cfg, "test")
    agent = PatchDropAgent(images.shape[1:], 10, cfg)
    agent.policy.set_weights(g["finetune/policy"])
    agent.hr.set_weights(g["finetune/hr"])
    low = images.reshape(24, 8, 4, 8, 4, 1).mean(axis=(2, 4))
    keep = forward(agent.policy, low) >= 0.5
    mask = np.kron(keep.reshape(24, 4, 4), np.ones((8, 8)))[..., None]
    acc = 100 * np.mean(forward(agent.hr, images * mask).argmax(1) == labels)
    assert saved["finetuned"]["accuracy"] == pytest.approx(acc, abs=0.01)
    assert saved["finetuned"]["mean_patches"] == pytest.approx(keep.sum(1).mean(), abs=1e-3)
    # the HR classifier row reads stage 1's network, not the fine-tuned one
    agent.hr.set_weights(g["classifiers/hr"])
    hr = 100 * np.mean(forward(agent.hr, images).argmax(1) == labels)
    assert saved["hr_classifier"]["accuracy"] == pytest.approx(hr, abs=0.01)
    gain = saved["finetuned"]["accuracy"] - saved["finetuned"]["random_accuracy"]
    assert saved["targets"]["gain_over_random_points"] == pytest.approx(gain)
    assert len(sorted((out / "pictures").glob("*.png"))) == 3  # capped by the preset's max_pictures
    assert (out / "accuracy_vs_patches.png").stat().st_size > 0 and (out / "config.json").is_file()

    # --patch-budget: the keep threshold chosen on the val split, then scored on test, both recomputed by hand (this
    # run trained on the images held out here: only the wiring is checked)
    agent.hr.set_weights(g["finetune/hr"])

    def by_hand(x, y, t):
        n = len(x)
        keep = forward(agent.policy, x.reshape(n, 8, 4, 8, 4, 1).mean(axis=(2, 4))) >= t
        masked = x * np.kron(keep.reshape(n, 4, 4), np.ones((8, 8)))[..., None]
        return 100 * np.mean(forward(agent.hr, masked).argmax(1) == y), keep.sum(1).mean()

    bcfg = make_config("tiny", val_fraction=0.25, patch_budget=3.0)
    b = run_test(bcfg, run, tmp_path / "budget", quiet=True, log=lambda m: None)["finetuned_budget"]
    xv, yv = load_for(bcfg, "val")
    assert b["val_images"] == len(xv) == 8 and [r["threshold"] for r in b["val_curve"]] == list(THRESHOLDS)
    for r in b["val_curve"]:
        assert (r["accuracy"], r["mean_patches"]) == pytest.approx(by_hand(xv, yv, r["threshold"]), abs=0.01)
    assert b["threshold"] == pick_threshold(b["val_curve"], 3.0)["threshold"]
    assert by_hand(xv, yv, 0.5)[1] > 3.0 and b["threshold"] > 0.5  # the greedy policy keeps too many here
    acc, kept = by_hand(images, labels, b["threshold"])
    assert (b["accuracy"], b["mean_patches"], b["budget"]) == pytest.approx((acc, kept, 3.0), abs=0.01)


def test_exact_resume_inside_the_policy_curve_stage(tmp_path, monkeypatch):
    """Stage 2 trains one policy per penalty, sharing the classifiers, alpha annealed 0.8 -> 0.95 over its two
    updates: 3 epochs straight equal 2, Ctrl-C, then --resume (every network and the whole training state)."""
    cfg = make_config("tiny", pretrain_epochs=2, finetune_epochs=0, two_stream_epochs=0, alpha_final=0.95)
    lines = []
    train(cfg, tmp_path / "a", quiet=True, log=lines.append)
    assert lines[0].startswith("networks: ") and "op by op" in lines[0]  # tiny: run_eagerly
    stage2 = [line for line in lines if line.startswith("stage 2 (pretrain) epoch")]
    assert "sigma0.5_alpha 0.8," in stage2[0] and "sigma0.5_alpha 0.95," in stage2[1], stage2
    with monkeypatch.context() as m:
        _interrupt_after(m, 2)
        with pytest.raises(KeyboardInterrupt):
            train(cfg, tmp_path / "b", **QUIET)
    assert read_latest(tmp_path / "b")["epoch"] == 2 and _groups(tmp_path / "b")[1] == ["classifiers"]
    train(cfg, tmp_path / "b", resume=True, **QUIET)
    _same_groups(_groups(tmp_path / "a"), _groups(tmp_path / "b"))
    _states_equal(tmp_path / "a", tmp_path / "b")
    # the third epoch moved the policies (the check is not vacuous)
    before = read_groups(tmp_path / "b" / "epoch_2.weights.h5")[0]["pretrain/sigma0.5/policy"]
    after = _groups(tmp_path / "b")[0]["pretrain/sigma0.5/policy"]
    assert any(not np.array_equal(x, y) for x, y in zip(before, after))


def test_exact_resume_inside_fine_tuning(pretrained, tmp_path, monkeypatch):
    """Stage 3 (policy and HR classifier), cut after its first epoch and resumed, equals the straight run; keep=1
    leaves one epoch file; a resume with another stage setting is refused, naming it."""
    cfg = make_config("tiny", two_stream_epochs=0)
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(pretrained, a)
    shutil.copytree(pretrained, b)
    train(cfg, a, resume=True, keep=1, **QUIET)
    with monkeypatch.context() as m:
        _interrupt_after(m, 3)
        with pytest.raises(KeyboardInterrupt):
            train(cfg, b, resume=True, **QUIET)
    train(cfg, b, resume=True, **QUIET)
    _same_groups(_groups(a), _groups(b))
    _states_equal(a, b)
    assert sorted(p.name for p in a.glob("epoch_*")) == ["epoch_4.weights.h5"]
    assert sorted(p.name for p in b.glob("epoch_*")) == [
        "epoch_2.weights.h5",
        "epoch_3.weights.h5",
        "epoch_4.weights.h5",
    ]
    with pytest.raises(ConfigError, match="finetune_lr"):
        train(cfg.replace(finetune_lr=0.5, two_stream_epochs=1), b, resume=True, **QUIET)
    with pytest.raises(ConfigError, match=r"stage 3 \(finetune\) has 2 of its 2 epochs done, this run gives it 3"):
        train(cfg.replace(finetune_epochs=3), b, resume=True, **QUIET)


def test_stage_n_retrains_from_the_end_of_stage_n_minus_1(pretrained, tmp_path):
    """`--stage 2` on a run past stage 2 rewinds it to epoch 1: stage 1's networks kept bit for bit, stages 3 and 4
    gone, later epoch files removed, the history cut; stage 2's own fields may change, stage 1's may not."""
    run = tmp_path / "m"
    shutil.copytree(pretrained, run)
    train(make_config("tiny"), run, resume=True, **QUIET)  # the whole run: 5 epochs
    train(make_config("tiny", pretrain_lr=0.05), run, "pretrain", **QUIET)
    g, finished = _groups(run)
    assert finished == ["classifiers", "pretrain"] and read_latest(run)["epoch"] == 2
    assert sorted(g) == ["classifiers/hr", "classifiers/lr", "pretrain/sigma0.5/policy", "pretrain/sigma2/policy"]
    _same_groups(g, _groups(pretrained), ["classifiers/hr", "classifiers/lr"])
    old = _groups(pretrained)[0]["pretrain/sigma0.5/policy"]
    assert any(not np.array_equal(x, y) for x, y in zip(old, g["pretrain/sigma0.5/policy"]))  # the new lr
    assert sorted(p.name for p in run.glob("epoch_*")) == ["epoch_1.weights.h5", "epoch_2.weights.h5"]
    history = json.loads(str(np.load(run / "training_state.npz")["history"]))
    assert [h["stage"] for h in history] == ["classifiers", "pretrain"]
    with pytest.raises(ConfigError, match="classifier_lr"):
        train(make_config("tiny", classifier_lr=0.5), run, "pretrain", **QUIET)


def test_test_reads_the_saved_config_and_seeds_only_itself(pretrained, tmp_path, capsys):
    """The test command: the saved configuration (its seed by default), --seed for the random baselines only,
    test-time fields changeable, another --preset or --data a one-line error (exit code 2)."""
    from zoomrl.experiments.cli import main

    run = tmp_path / "m"
    shutil.copytree(pretrained, run)
    cfg = make_config("tiny").replace(seed=3)
    cfg.save(run / "config.json")  # a run of seed 3
    args = ["patchdrop", "test", "--model-dir", str(run), "--quiet"]
    assert main([*args, "--output-dir", str(tmp_path / "r0"), "--random-draws", "3"]) == 0
    assert main([*args, "--output-dir", str(tmp_path / "r1"), "--seed", "7", "--preset", "tiny"]) == 0
    r0 = json.loads((tmp_path / "r0" / "results.json").read_text())
    r1 = json.loads((tmp_path / "r1" / "results.json").read_text())
    assert r0["seed"] == 3 and r1["seed"] == 7
    assert (
        len(r0["policy_curve"][0]["random_accuracy_draws"]) == 3
        and len(r1["policy_curve"][0]["random_accuracy_draws"]) == 2
    )
    assert r0["hr_classifier"] == r1["hr_classifier"]  # the networks do not depend on the test's seed
    for a, b in zip(r0["policy_curve"], r1["policy_curve"]):
        assert (a["accuracy"], a["mean_patches"]) == (b["accuracy"], b["mean_patches"])
    capsys.readouterr()
    assert main([*args, "--output-dir", str(tmp_path / "r2"), "--preset", "fast"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --preset fast: the run in") and "--preset tiny" in err and err.count("\n") == 1
    assert not (tmp_path / "r2").exists()
    assert main([*args, "--output-dir", str(tmp_path / "r3"), "--data", "cifar10"]) == 2  # the run's data: digits
    err = capsys.readouterr().err
    assert err.startswith("error: --data cifar10: the run in") and "--data digits" in err and err.count("\n") == 1
    from zoomrl.experiments.patchdrop.cli import build_parser

    assert "--alpha" not in build_parser("test").format_help()  # not a test-time field
    assert "fast: 0.8" in " ".join(build_parser("train").format_help().split())  # --alpha's value in force


def test_test_seed_moves_the_random_baseline(pretrained, tmp_path):
    """The test's --seed reaches the random draws: over seeds, a random baseline's draws differ at least once."""
    from zoomrl.experiments.patchdrop.test import run_test

    draws = set()
    for seed in range(4):
        res = run_test(make_config("tiny", seed=seed, random_draws=3), pretrained, tmp_path / str(seed), **QUIET)
        draws.add(tuple(res["policy_curve"][1]["random_accuracy_draws"]))
    assert len(draws) > 1


def test_command_line_errors(tmp_path, capsys):
    from zoomrl.experiments.cli import main

    assert main(["patchdrop", "test", "--model-dir", str(tmp_path / "none"), "--quiet"]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert (
        main(["patchdrop", "train", "--preset", "tiny", "--stage", "3", "--model-dir", str(tmp_path / "m"), "--quiet"])
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "stage 2 (pretrain) has not finished" in err and err.count("\n") == 1
    assert (
        main(["patchdrop", "train", "--preset", "tiny", "--sigma-curve", "1,x", "--model-dir", str(tmp_path / "m")])
        == 2
    )
    assert "--sigma-curve expects numbers" in capsys.readouterr().err
    assert main(["patchdrop", "train", "--preset", "tiny", "--alpha", "0.3", "--model-dir", str(tmp_path / "m")]) == 2
    assert "alpha must lie in [0.5, 1]" in capsys.readouterr().err


def test_old_flag_spellings_still_work(capsys):
    from zoomrl.experiments.patchdrop.cli import build_parser, make_train_config

    cfg = make_train_config(
        build_parser("train").parse_args(["--preset", "tiny", "--sigma", "3", "--train-limit", "0"])
    )
    assert cfg.finetune_sigma == 3.0 and cfg.train_limit == 0
    assert "--sigma is deprecated" in capsys.readouterr().err


def test_rewind_run_ends_the_run_at_the_epoch_given(tmp_path):
    """core.runner.rewind_run on a three-epoch run folder written by the Checkpointer: epoch 1's checkpoint written
    anew (the given weights, the history cut, the meta kept, the extra state), the later epochs' files gone."""
    from zoomrl.core.checkpoint import Checkpointer
    from zoomrl.core.runner import rewind_run

    history = [{"epoch": e, "loss": 1.0 / e} for e in (1, 2, 3)]
    for e in (1, 2, 3):

        def write_state(p, e=e):
            meta, hist = np.array('{"family": "x"}'), np.array(json.dumps(history[:e]))
            np.savez(p, epoch=np.array(e), meta=meta, history=hist, agents=np.array(2))

        weights = {"weights.h5": lambda p, e=e: p.write_text(f"epoch {e}")}
        Checkpointer(tmp_path, keep=None).save(e, weights, {"training_state.npz": write_state})
    rewind_run(tmp_path, 1, lambda p: p.write_text("rewound"), {"agents": np.array(0)})
    assert read_latest(tmp_path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.glob("epoch_*")) == ["epoch_1.weights.h5"]
    assert (tmp_path / "epoch_1.weights.h5").read_text() == "rewound"
    with np.load(tmp_path / "training_state.npz") as s:
        assert int(s["epoch"]) == 1 and int(s["agents"]) == 0 and str(s["meta"]) == '{"family": "x"}'
        assert json.loads(str(s["history"])) == history[:1]


def test_read_run_refuses_a_run_without_finished_classifiers(tmp_path):
    """What testing reads (stages.read_run): the last checkpoint's groups and finished stages; no checkpoint, or one
    written before stage 1 finished, is a one-line error naming the folder."""
    from zoomrl.agents.patchdrop.stages import read_run, write_groups

    with pytest.raises(FileNotFoundError, match="no finished epoch"):
        read_run(tmp_path)
    arrays = {"classifiers/hr": [np.ones((2, 3), np.float32)], "classifiers/lr": [np.zeros(4, np.float32)]}
    write_groups(tmp_path / "epoch_1.weights.h5", arrays, [])
    (tmp_path / "latest.json").write_text(json.dumps({"epoch": 1, "files": {"weights.h5": "epoch_1.weights.h5"}}))
    with pytest.raises(FileNotFoundError, match=r"stage 1 \(classifiers\) has not finished"):
        read_run(tmp_path)
    write_groups(tmp_path / "epoch_1.weights.h5", arrays, ["classifiers"])
    groups, finished = read_run(tmp_path)
    assert finished == ["classifiers"] and sorted(groups) == sorted(arrays)
    np.testing.assert_array_equal(groups["classifiers/hr"][0], arrays["classifiers/hr"][0])
