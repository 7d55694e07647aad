"""PatchDrop end to end on the tiny preset, in process: every stage, the test command's outputs, exact resume,
"train with no --stage continues after the last finished stage", and one-line errors."""

import json
import shutil

import h5py
import numpy as np
import pytest

from zoomrl.experiments.patchdrop.config import make_config
from zoomrl.experiments.patchdrop.train import STAGE_DIRS, load_data, run_train, stage_finished, train_stage


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """Stages 1 and 2 of the tiny preset, trained once for the module."""
    root = tmp_path_factory.mktemp("pd") / "model"
    cfg = make_config("tiny")
    for stage in ("classifiers", "pretrain"):
        run_train(cfg, root, stage, resume=False, keep=3, quiet=True, log=lambda m: None)
    return root


def _weights(path):
    with h5py.File(path, "r") as f:
        return {f"{g}/{k}": np.asarray(f[g][k]) for g in f for k in f[g]}


def test_no_stage_continues_after_finished_stages_then_test(pretrained, tmp_path):
    from zoomrl.experiments.patchdrop.test import run_test

    model = tmp_path / "model"
    shutil.copytree(pretrained, model)
    before = {s: (model / STAGE_DIRS[s] / "latest.json").read_bytes() for s in ("classifiers", "pretrain")}
    lines = []
    done = run_train(make_config("tiny"), model, None, resume=False, keep=3, quiet=True, log=lines.append)
    assert "stage 1 (classifiers): already finished, skipped" in lines
    assert "stage 2 (pretrain): already finished, skipped" in lines
    for s in ("classifiers", "pretrain"):  # untouched
        assert (model / STAGE_DIRS[s] / "latest.json").read_bytes() == before[s]
    assert stage_finished(model, "finetune")["epoch"] == 2 and stage_finished(model, "two_stream")["epoch"] == 1
    assert set(done) == {"classifiers", "pretrain", "finetune", "two_stream"}
    for d in STAGE_DIRS.values():
        assert (model / d / "config.json").is_file() and (model / d / "training_state.npz").is_file()

    out = tmp_path / "results"
    res = run_test(model, out, seed=0, bool_draw=True, quiet=True, log=lambda m: None)
    saved = json.loads((out / "results.json").read_text())
    assert saved["test_images"] == 24 == res["test_images"]
    assert [r["sigma"] for r in saved["policy_curve"]] == [0.5, 2.0]
    for key in ("finetuned", "two_stream"):
        assert 0 <= saved[key]["mean_patches"] <= 16 and 0 <= saved[key]["accuracy"] <= 100
        assert len(saved[key]["random_accuracy_draws"]) == 2
    assert saved["lr_classifier"]["mean_patches"] == 0 and saved["hr_classifier"]["mean_patches"] == 16
    # the fine-tuned row, recomputed independently: greedy patches of the stage-3 policy, HR on the masked images
    from zoomrl.agents.patchdrop.agent import PatchDropAgent, forward

    cfg = make_config("tiny")
    images, labels = load_data(cfg, "test")
    agent = PatchDropAgent(images.shape[1:], 10, cfg)
    agent.load_weights(model / STAGE_DIRS["finetune"] / stage_finished(model, "finetune")["files"]["weights.h5"])
    low = images.reshape(24, 8, 4, 8, 4, 1).mean(axis=(2, 4))
    keep = forward(agent.policy, low) >= 0.5
    mask = np.kron(keep.reshape(24, 4, 4), np.ones((8, 8)))[..., None]
    acc = 100 * np.mean(forward(agent.hr, images * mask).argmax(1) == labels)
    assert saved["finetuned"]["accuracy"] == pytest.approx(acc, abs=0.01)
    assert saved["finetuned"]["mean_patches"] == pytest.approx(keep.sum(1).mean(), abs=1e-3)
    t = saved["targets"]
    assert t["within_1_point_of_hr"] == (saved["hr_classifier"]["accuracy"] - saved["finetuned"]["accuracy"] <= 1)
    gain = saved["finetuned"]["accuracy"] - saved["finetuned"]["random_accuracy"]
    assert t["beats_random_by_20_points"] == (gain >= 20) and t["gain_over_random_points"] == pytest.approx(gain)
    pics = sorted((out / "pictures").glob("*.png"))
    assert len(pics) == 3  # capped by the preset's max_pictures
    assert (out / "accuracy_vs_patches.png").stat().st_size > 0 and (out / "config.json").is_file()


def test_exact_resume_and_keep_checkpoints(pretrained, tmp_path):
    cfg = make_config("tiny", alpha_final=0.95)  # the alpha schedule's clock must resume too
    data = load_data(cfg, "train")
    quiet = dict(quiet=True, log=lambda m: None)
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(pretrained, a)
    shutil.copytree(pretrained, b)
    train_stage(cfg, "finetune", a, data, resume=False, keep=1, **quiet)  # 2 epochs straight
    train_stage(cfg.replace(finetune_epochs=1), "finetune", b, data, resume=False, keep=3, **quiet)
    assert not stage_finished(b, "finetune") or stage_finished(b, "finetune")["epoch"] == 1
    train_stage(cfg, "finetune", b, data, resume=True, keep=3, **quiet)  # + 1 resumed
    wa = _weights(a / STAGE_DIRS["finetune"] / "epoch_2.weights.h5")
    wb = _weights(b / STAGE_DIRS["finetune"] / "epoch_2.weights.h5")
    assert wa.keys() == wb.keys() and len(wa) > 20
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)
    sa = np.load(a / STAGE_DIRS["finetune"] / "training_state.npz")
    sb = np.load(b / STAGE_DIRS["finetune"] / "training_state.npz")
    for k in sa.files:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)
    # keep=1 left epoch 2 only; keep=3 both
    assert sorted(p.name for p in (a / STAGE_DIRS["finetune"]).glob("epoch_*")) == ["epoch_2.weights.h5"]
    assert len(list((b / STAGE_DIRS["finetune"]).glob("epoch_*"))) == 2
    # a resume with another setting is refused, naming it
    from zoomrl.core.config import ConfigError

    with pytest.raises(ConfigError, match="finetune_lr"):
        train_stage(cfg.replace(finetune_lr=0.5, finetune_epochs=3), "finetune", b, data, resume=True, keep=3, **quiet)


def test_stage_anneals_alpha_over_its_updates(pretrained, tmp_path):
    """Stage 3 of the tiny preset runs 2 epochs of 1 update (32 images, batch 32): alpha 0.8 then 0.95, as the
    epoch lines report; the run starts by saying how the networks run."""
    shutil.copytree(pretrained, tmp_path / "m")
    lines = []
    run_train(
        make_config("tiny", alpha_final=0.95),
        tmp_path / "m",
        "finetune",
        resume=False,
        keep=3,
        quiet=True,
        log=lines.append,
    )
    assert lines[0].startswith("networks: ") and "op by op" in lines[0]  # tiny: run_eagerly
    epochs = [line for line in lines if line.startswith("stage 3 (finetune) epoch")]
    assert len(epochs) == 2 and "alpha 0.8," in epochs[0] and "alpha 0.95," in epochs[1]


def test_exact_resume_of_the_policy_curve_stage(pretrained, tmp_path):
    """Stage 2 trains one policy per penalty, sharing the classifiers: 2 epochs straight equal 1 + 1 resumed, for
    every policy's weights and the training state (optimizers, generators)."""
    cfg = make_config("tiny", pretrain_epochs=2)
    data = load_data(cfg, "train")
    quiet = dict(quiet=True, log=lambda m: None)
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(pretrained, a)
    shutil.copytree(pretrained, b)
    train_stage(cfg, "pretrain", a, data, resume=False, keep=3, **quiet)
    train_stage(cfg.replace(pretrain_epochs=1), "pretrain", b, data, resume=False, keep=3, **quiet)
    train_stage(cfg, "pretrain", b, data, resume=True, keep=3, **quiet)
    names = ["epoch_2.sigma0.5.weights.h5", "epoch_2.sigma2.weights.h5"]
    for name in names:
        wa, wb = _weights(a / STAGE_DIRS["pretrain"] / name), _weights(b / STAGE_DIRS["pretrain"] / name)
        assert wa.keys() == wb.keys() and len(wa) > 20
        for k in wa:
            np.testing.assert_array_equal(wa[k], wb[k], err_msg=f"{name} {k}")
    with (
        np.load(a / STAGE_DIRS["pretrain"] / "training_state.npz") as sa,
        np.load(b / STAGE_DIRS["pretrain"] / "training_state.npz") as sb,
    ):
        assert sorted(sa.files) == sorted(sb.files) and int(sa["agents"]) == 2
        for k in sa.files:
            np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)
    # the second epoch moved the policies (the check is not vacuous)
    first = _weights(b / STAGE_DIRS["pretrain"] / "epoch_1.sigma0.5.weights.h5")
    assert any(not np.array_equal(first[k], v) for k, v in _weights(b / STAGE_DIRS["pretrain"] / names[0]).items())


def test_one_run_of_every_stage_equals_stage_by_stage_runs(pretrained, tmp_path):
    """Stages 1 and 2 in one call (no --stage) give the weights of `--stage 1` then `--stage 2` (the fixture):
    a stage's fresh weights depend on (seed, stage) alone, so a run interrupted before a stage's first checkpoint
    starts that stage again exactly as the straight run did."""
    cfg = make_config("tiny", finetune_epochs=0, two_stream_epochs=0)
    run_train(cfg, tmp_path / "m", None, resume=False, keep=3, quiet=True, log=lambda m: None)
    for stage in ("classifiers", "pretrain"):
        files = stage_finished(pretrained, stage)["files"]
        assert files == stage_finished(tmp_path / "m", stage)["files"]
        for name in files.values():
            if name.endswith(".weights.h5"):
                a = _weights(pretrained / STAGE_DIRS[stage] / name)
                b = _weights(tmp_path / "m" / STAGE_DIRS[stage] / name)
                assert a.keys() == b.keys() and len(a) > 10
                for k in a:
                    np.testing.assert_array_equal(a[k], b[k], err_msg=f"{stage} {name} {k}")


def test_command_line_errors(tmp_path, capsys):
    from zoomrl.experiments.cli import main

    assert main(["patchdrop", "test", "--model-dir", str(tmp_path / "none"), "--quiet"]) == 2
    assert "error: " in capsys.readouterr().err and "no config.json" in capsys.readouterr().err + "no config.json"
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
