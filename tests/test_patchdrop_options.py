"""Issue 20's options of PatchDrop, against hand values: stage 1's random patch masking, the annealed exploration
alpha, ``--epochs`` (the whole run's) against ``--stage-epochs`` (each stage's), and the compiled forwards.

Mutations tried by hand, and the test that caught each:

* masking off in stage 1 of ``learn`` (the HR classifier given the whole images):
  ``test_stage_1_masks_the_hr_classifier_input_only``;
* ``random_patch_masks`` dropping ``floor`` instead of ``round`` of ``rate * P``:
  ``test_random_patch_masks_drop_the_drawn_share``;
* the agent sampling with the constant ``alpha`` (not :meth:`current_alpha`):
  ``test_agent_anneals_alpha_for_sampling_and_the_loss``;
* the policy loss reading the network's fixed alpha, not the batch's column:
  ``test_agent_anneals_alpha_for_sampling_and_the_loss`` (the loss against NumPy with per-row alphas);
* the update counter not restored by ``set_state``: ``test_patchdrop_train.py::
  test_exact_resume_inside_the_policy_curve_stage`` (it anneals alpha);
* the schedule call removed from the trainee's ``start``: ``test_patchdrop_train.py::
  test_exact_resume_inside_the_policy_curve_stage``;
* the compiled forward closing over the weights' values at its first call:
  ``test_compiled_forwards_match_eager_ones_after_an_update``.
"""

import json

import numpy as np
import pytest

from zoomrl.agents.base import LabelledBatch
from zoomrl.agents.patchdrop import patches as pt
from zoomrl.agents.patchdrop.config import epoch_overrides, split_epochs
from zoomrl.core.config import ConfigError
from zoomrl.experiments.patchdrop.config import PRESETS, make_config


def test_random_patch_masks_drop_the_drawn_share():
    """Per image a rate r ~ U[0, 0.75], then round(16 r) distinct patches dropped: recomputed by hand from a twin
    generator, and the masked images have exactly that share of their patches zeroed."""
    rng = np.random.default_rng(3)
    twin = np.random.default_rng(3)
    keep, rates = pt.random_patch_masks(200, 16, 0.75, rng)
    hand_rates = twin.uniform(0.0, 0.75, 200)
    np.testing.assert_array_equal(rates, hand_rates)
    dropped = np.array([int(np.floor(16 * r + 0.5)) for r in hand_rates])  # round half up; ties have measure 0
    np.testing.assert_array_equal(16 - keep.sum(axis=1), dropped)
    assert set(np.unique(keep)) <= {0.0, 1.0}
    images = np.ones((200, 32, 32, 1), np.float32)
    masked = pt.mask_patches(images, keep, 4)
    zero_share = (masked[..., 0] == 0).reshape(200, -1).mean(axis=1)
    np.testing.assert_allclose(zero_share, dropped / 16)
    # each zeroed patch is a whole 8 x 8 patch, the one the mask names
    k = int(np.flatnonzero(keep[0] == 0)[0]) if (keep[0] == 0).any() else None
    if k is not None:
        r, c = divmod(k, 4)
        assert not masked[0, r * 8 : r * 8 + 8, c * 8 : c * 8 + 8].any()
    # over many images: the share dropped averages 0.75 / 2, never more than 12 of 16, every patch alike
    keep, _ = pt.random_patch_masks(20000, 16, 0.75, np.random.default_rng(0))
    share = 1 - keep.mean(axis=1)
    assert share.mean() == pytest.approx(0.375, abs=0.01) and share.max() == 12 / 16
    np.testing.assert_allclose(keep.mean(axis=0), 0.625, atol=0.02)
    assert pt.random_patch_masks(5, 16, 0.0, rng)[0].all()  # rate 0: nothing dropped
    with pytest.raises(ValueError, match="masking rate"):
        pt.random_patch_masks(5, 16, 1.5, rng)


def test_stage_1_masks_the_hr_classifier_input_only():
    """With classifier_mask_max, the HR classifier's update sees the drawn share of patches zeroed (the agent's
    generator, recomputed by a twin); the LR classifier sees the whole images. Off (0), the HR sees them whole."""
    from zoomrl.agents.patchdrop.agent import PatchDropAgent

    rng = np.random.default_rng(0)
    images = (0.5 + rng.random((16, 16, 16, 1))).astype(np.float32)  # no pixel is 0
    labels = rng.integers(0, 10, 16)
    for mask_max in (0.75, 0.0):
        agent = PatchDropAgent((16, 16, 1), 10, make_config("tiny", classifier_mask_max=mask_max), seed=0)
        agent.configure("classifiers")
        twin = np.random.default_rng()
        twin.bit_generator.state = agent.rng.bit_generator.state
        seen = {}
        agent.hr.train_on_batch = lambda x, y, seen=seen: seen.setdefault("hr", np.asarray(x)) is None or 0.0
        agent.lr.train_on_batch = lambda x, y, seen=seen: seen.setdefault("lr", np.asarray(x)) is None or 0.0
        agent.learn(LabelledBatch(images, labels))
        np.testing.assert_allclose(seen["lr"], pt.low_resolution(images, agent.lr_shape[0]))
        zero_share = (seen["hr"][..., 0] == 0).reshape(16, -1).mean(axis=1)
        if mask_max:
            rates = twin.uniform(0.0, mask_max, 16)
            np.testing.assert_allclose(zero_share, np.floor(16 * rates + 0.5) / 16)
            assert zero_share.max() > 0.3  # not vacuous
            kept = seen["hr"] != 0
            np.testing.assert_array_equal(seen["hr"][kept], images[kept])
        else:
            np.testing.assert_array_equal(seen["hr"], images)


def test_masking_changes_what_stage_1_learns():
    """The same seed and batch, masking on or off: the HR classifier's weights after one update differ, the LR
    classifier's do not."""
    import keras

    from zoomrl.agents.patchdrop.agent import PatchDropAgent

    rng = np.random.default_rng(1)
    images, labels = rng.random((16, 16, 16, 1)).astype(np.float32), rng.integers(0, 10, 16)
    weights = {}
    for mask_max in (0.0, 0.75):
        keras.utils.set_random_seed(0)
        agent = PatchDropAgent((16, 16, 1), 10, make_config("tiny", classifier_mask_max=mask_max), seed=0)
        agent.configure("classifiers")
        agent.learn(LabelledBatch(images, labels))
        weights[mask_max] = (agent.hr.get_weights(), agent.lr.get_weights())
    assert any(not np.array_equal(a, b) for a, b in zip(weights[0.0][0], weights[0.75][0]))
    for a, b in zip(weights[0.0][1], weights[0.75][1]):
        np.testing.assert_array_equal(a, b)


def test_alpha_schedule_hand_values():
    assert [pt.annealed_alpha(0.8, 0.95, k, 4) for k in range(6)] == pytest.approx([0.8, 0.85, 0.9, 0.95, 0.95, 0.95])
    assert [pt.annealed_alpha(0.8, 0.8, k, 3) for k in range(3)] == pytest.approx([0.8] * 3)
    assert pt.annealed_alpha(0.6, 0.9, 0, 1) == pytest.approx(0.6)
    assert pt.annealed_alpha(0.6, 1.0, 5, 11) == pytest.approx(0.8)


def test_agent_anneals_alpha_for_sampling_and_the_loss(monkeypatch):
    """Three updates, alpha 0.8 -> 0.95: the actions are drawn from p' with that update's alpha, the loss is fed
    it; the policy loss with a column of per-row alphas matches NumPy; the update counter survives get/set_state."""
    import keras

    from zoomrl.agents.patchdrop.agent import PatchDropAgent

    cfg = make_config("tiny", alpha=0.8, alpha_final=0.95)
    agent = PatchDropAgent((16, 16, 1), 10, cfg, seed=0)
    agent.configure("pretrain")
    agent.schedule(3)
    rng = np.random.default_rng(0)
    images, labels = rng.random((6, 16, 16, 1)).astype(np.float32), rng.integers(0, 10, 6)
    used, fed = [], []
    mix = pt.mix_probabilities
    monkeypatch.setattr(pt, "mix_probabilities", lambda p, a: (used.append(a), mix(p, a))[1])
    train = agent.policy.train_on_batch
    monkeypatch.setattr(agent.policy, "train_on_batch", lambda x, y: (fed.append(y), train(x, y))[1])
    outs = [agent.learn(LabelledBatch(images, labels)) for _ in range(2)]
    state = agent.get_state()
    outs.append(agent.learn(LabelledBatch(images, labels)))
    assert used == pytest.approx([0.8, 0.875, 0.95]) and [o["alpha"] for o in outs] == pytest.approx(used)
    for y, a in zip(fed, used):
        assert y.shape == (6, 18)
        np.testing.assert_allclose(y[:, 17], a, rtol=1e-6)
    other = PatchDropAgent((16, 16, 1), 10, cfg, seed=1)
    other.configure("pretrain")
    other.schedule(3)
    other.set_state(state)
    assert other.current_alpha() == pytest.approx(0.95)
    # the loss reads the batch's alphas, row by row
    p = rng.uniform(0.05, 0.95, (4, 16)).astype(np.float32)
    a = (rng.random((4, 16)) < 0.5).astype(np.float32)
    adv, alphas = rng.normal(size=4).astype(np.float32), np.array([0.6, 0.8, 0.9, 1.0], np.float32)
    y = np.concatenate([a, adv[:, None], alphas[:, None]], 1)
    loss = float(keras.ops.convert_to_numpy(agent.policy.compute_loss(y=y, y_pred=p)))
    pm = alphas[:, None] * p + (1 - alphas[:, None]) * (1 - p)
    ref = -np.mean((a * np.log(pm) + (1 - a) * np.log(1 - pm)) * adv[:, None])
    assert loss == pytest.approx(ref, rel=1e-5)


def test_split_epochs_hand_values():
    assert split_epochs(15, [8, 3, 3, 1]) == [8, 3, 3, 1]  # the fast preset's own total
    assert split_epochs(30, [8, 3, 3, 1]) == [16, 6, 6, 2]
    # 7 * (8, 3, 3, 1) / 15 = 3.73, 1.4, 1.4, 0.47: floors 3, 1, 1, 0; the 2 left go to .73 and .47
    assert split_epochs(7, [8, 3, 3, 1]) == [4, 1, 1, 1]
    assert split_epochs(4, [8, 3, 3, 1]) == [1, 1, 1, 1]  # 2, 1, 1, 0 -> the empty stage takes one from stage 1
    assert split_epochs(10, [8, 3, 3, 0]) == [6, 2, 2, 0]  # a skipped stage stays skipped
    assert split_epochs(0, [8, 3, 3, 1]) == [0, 0, 0, 0]
    with pytest.raises(ConfigError, match="4 stages"):
        split_epochs(3, [8, 3, 3, 1])


def test_epochs_is_the_whole_runs_and_stage_epochs_each_stages():
    """Through the command line's parser: --epochs N shares N among the stages (the same with --stage, which only
    picks the stage that runs), --stage-epochs gives the old per-stage meaning."""
    from zoomrl.experiments.patchdrop.cli import build_parser, make_train_config

    def cfg(*argv):
        c = make_train_config(build_parser("train").parse_args(list(argv)))
        return [c.classifier_epochs, c.pretrain_epochs, c.finetune_epochs, c.two_stream_epochs]

    assert cfg("--preset", "fast") == [8, 3, 3, 1]
    assert (
        cfg("--preset", "fast", "--epochs", "30")
        == [16, 6, 6, 2]
        == cfg("--preset", "fast", "--epochs", "30", "--stage", "3")
    )
    assert cfg("--preset", "fast", "--stage-epochs", "5") == [5, 5, 5, 5]
    assert cfg("--preset", "fast", "--stage-epochs", "5", "--stage", "3") == [8, 3, 5, 1]
    assert cfg("--preset", "fast", "--stage-epochs", "2,4,6") == [2, 4, 6, 1]
    assert cfg("--preset", "fast", "--stage-epochs", "2,4,6,0") == [2, 4, 6, 0]
    base = make_config("fast")
    for bad, match in (
        ({"epochs": 3, "stage_epochs": "1"}, "not both"),
        ({"stage_epochs": "1,2"}, "S1,S2,S3"),
        ({"stage_epochs": "a"}, "S1,S2,S3"),
        ({"stage_epochs": "1,-2,3"}, "S1,S2,S3"),
        ({"epochs": 2}, "--epochs 2: 2 epochs cannot be shared"),
    ):
        with pytest.raises(ConfigError, match=match):
            epoch_overrides(base, **bad)


def test_command_line_epochs_error_is_one_line(tmp_path, capsys):
    from zoomrl.experiments.cli import main

    assert (
        main(["patchdrop", "train", "--preset", "tiny", "--epochs", "2", "--model-dir", str(tmp_path / "m"), "--quiet"])
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: --epochs 2") and "--stage-epochs" in err and err.count("\n") == 1
    assert not (tmp_path / "m").exists()


def test_presets_keep_their_values_and_fast2_turns_the_options_on():
    for name in ("paper", "fast", "tiny"):
        c = make_config(name)
        assert c.classifier_mask_max == 0 and c.alpha_final == 0 and c.precise_bn is False, name
    assert "classifier_mask_max" not in PRESETS["fast"] and "alpha_final" not in PRESETS["fast"]
    c = make_config("fast2")
    assert c.classifier_mask_max == 0.75 and c.alpha_final == 0.95 and c.execution == "graph" and c.precise_bn
    with pytest.raises(ConfigError, match="alpha_final"):
        make_config("fast", alpha_final=0.3)
    with pytest.raises(ConfigError, match="classifier_mask_max"):
        make_config("fast", classifier_mask_max=1.5)
    with pytest.raises(ConfigError, match="execution"):
        make_config("fast", execution="fastest")


def test_compiled_forwards_match_eager_ones_after_an_update():
    """The traced forwards (inference, and training mode without touching the moving statistics) give the eager
    outputs, and still do after the weights change (the variables are read at each call, not frozen)."""
    import keras

    from zoomrl.agents.patchdrop.agent import CompiledForward, forward, training_forward
    from zoomrl.agents.patchdrop.resnet import cifar_resnet

    keras.utils.set_random_seed(0)
    net = cifar_resnet((8, 8, 1), 1, 5, "softmax", 4, "t")
    x = np.random.default_rng(0).random((6, 8, 8, 1)).astype(np.float32) + 2.0
    infer, train = CompiledForward(net, False, "graph"), CompiledForward(net, True, "graph")
    for _ in range(2):
        np.testing.assert_allclose(infer(x), forward(net, x), atol=1e-6)
        np.testing.assert_allclose(train(x), training_forward(net, x), atol=1e-6)
        assert np.abs(infer(x) - train(x)).max() > 1e-3  # the two modes differ here
        net.set_weights([w * 1.5 + 0.1 for w in net.get_weights()])
    moving = [np.asarray(v) for v in net.non_trainable_weights]
    train(x)
    for a, b in zip(moving, net.non_trainable_weights):
        np.testing.assert_array_equal(a, np.asarray(b))


def _results(seed, hr, fin, curve, own_hr=None):
    own = {} if own_hr is None else {"hr_all_patches_accuracy": own_hr}
    return {
        "seed": seed,
        "hr_classifier": {"accuracy": hr, "mean_patches": 16},
        "finetuned": {"accuracy": fin[0], "mean_patches": fin[1], "random_accuracy": fin[2], **own},
        "policy_curve": [{"sigma": s, "accuracy": a, "mean_patches": m, "random_accuracy": r} for s, a, m, r in curve],
    }


def _state_with_history(run_dir, history):
    run_dir.mkdir(parents=True, exist_ok=True)
    np.savez(run_dir / "training_state.npz", epoch=np.array(len(history)), history=np.array(json.dumps(history)))


def test_history_series_hand_values(tmp_path):
    """A run's history as the learning curves' panels: each key under its stage (and stage 2's penalty) label, the
    run epoch as x; keys that are not drawn (policy_loss) and panels with no value are left out. The same history
    read back from a run state; a missing state or one without a history is one line naming the file."""
    from zoomrl.core.runner import read_history
    from zoomrl.eval.patchdrop import history_series, mean_curves, plot_history

    history = [
        {"epoch": 1, "stage": "classifiers", "stage_epoch": 1, "hr_loss": 2.5, "lr_loss": 2.0},
        {"epoch": 2, "stage": "classifiers", "stage_epoch": 2, "hr_loss": 1.5, "lr_loss": 1.0},
        {
            "epoch": 3,
            "stage": "pretrain",
            "stage_epoch": 1,
            "sigma0.5_greedy_reward": 0.3,
            "sigma0.5_alpha": 0.8,
            "sigma10_greedy_reward": -1.5,
            "sigma10_policy_loss": -1.0,
        },
        {
            "epoch": 4,
            "stage": "finetune",
            "stage_epoch": 1,
            "greedy_reward": 0.6,
            "greedy_patches": 8.5,
            "hr_loss": 0.4,
        },
    ]
    assert history_series(history) == {
        "classifier loss": {
            "classifiers HR": ([1, 2], [2.5, 1.5]),
            "classifiers LR": ([1, 2], [2.0, 1.0]),
            "finetune HR": ([4], [0.4]),
        },
        "greedy policy's reward": {
            "pretrain σ=0.5": ([3], [0.3]),
            "pretrain σ=10": ([3], [-1.5]),
            "finetune": ([4], [0.6]),
        },
        "greedy policy's patches kept": {"finetune": ([4], [8.5])},
        "exploration alpha": {"pretrain σ=0.5": ([3], [0.8])},
    }
    # two seeds: the mean where both have a label at the same epochs; a label one seed lacks is left out
    other = [dict(h) for h in history]
    other[0]["hr_loss"], other[3]["greedy_reward"] = 3.5, 0.2
    del other[2]["sigma10_greedy_reward"]
    means = mean_curves([history, other])
    assert means["classifier loss"]["classifiers HR"]["mean"] == [3.0, 1.5]
    assert means["greedy policy's reward"]["finetune"] == {"epochs": [4], "seeds": [[0.6], [0.2]], "mean": [0.4]}
    assert "pretrain σ=10" not in means["greedy policy's reward"]
    plot_history(history, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    _state_with_history(tmp_path / "run", history)
    assert read_history(tmp_path / "run") == history
    with pytest.raises(FileNotFoundError, match="no_run/training_state.npz"):
        read_history(tmp_path / "no_run")
    np.savez(tmp_path / "run" / "training_state.npz", epoch=np.array(1))
    with pytest.raises(ValueError, match="holds no history"):
        read_history(tmp_path / "run")


def test_seed_summary_hand_values(tmp_path):
    """Two seeds' results: the means, gains and the curve by hand; the script's table and files; a missing
    results file is a one-line error."""
    import subprocess
    import sys

    from conftest import REPO

    def seeds(*args):
        """The script run from ``tmp_path`` (its folders given relative to it)."""
        command = [sys.executable, str(REPO / "scripts" / "patchdrop_seeds.py"), *args]
        return subprocess.run(command, capture_output=True, text=True, cwd=str(tmp_path), timeout=120)

    a = _results(0, 97.0, (96.0, 7.0, 60.0), [(0.5, 90.0, 5.0, 50.0), (2.0, 95.0, 8.0, 70.0)], own_hr=99.0)
    b = _results(1, 98.0, (97.0, 8.0, 70.0), [(0.5, 92.0, 6.0, 52.0), (2.0, 96.0, 9.0, 72.0)], own_hr=98.0)
    for name, r, reward in (("s0", a, 0.2), ("s1", b, 0.4)):
        (tmp_path / name).mkdir()
        history = [
            {"epoch": 1, "stage": "classifiers", "stage_epoch": 1, "hr_loss": 1.0, "lr_loss": 2.0},
            {"epoch": 2, "stage": "finetune", "stage_epoch": 1, "greedy_reward": reward, "greedy_patches": 8.0},
        ]
        _state_with_history(tmp_path / name / "models", history)
        (tmp_path / name / "results.json").write_text(json.dumps({**r, "model_dir": str(tmp_path / name / "models")}))
    proc = seeds("s0", "s1", "--output", "out")
    assert proc.returncode == 0, proc.stderr
    s = json.loads((tmp_path / "out" / "seeds.json").read_text())
    f = s["finetuned"]
    assert (f["accuracy_mean"], f["mean_patches_mean"], f["random_accuracy_mean"]) == (96.5, 7.5, 65.0)
    assert f["gain_over_random"] == [36.0, 27.0] and f["gap_to_hr_mean"] == 1.0 and s["hr_accuracy_mean"] == 97.5
    assert s["curve"] == [
        {"sigma": 0.5, "seeds": 2, "mean_patches": 5.5, "accuracy": 91.0, "accuracy_std": 1.0, "random_accuracy": 51.0},
        {"sigma": 2.0, "seeds": 2, "mean_patches": 8.5, "accuracy": 95.5, "accuracy_std": 0.5, "random_accuracy": 71.0},
    ]
    assert f["gap_to_own_hr_all_patches"] == [3.0, 1.0] and f["gap_to_own_hr_all_patches_mean"] == 2.0
    assert "| **PatchDrop (stage 3)** | **mean** | **7.50** | **96.50** | 65.00 | +31.50 | 1.00 | 2.00 |" in proc.stdout
    assert (tmp_path / "out" / "accuracy_vs_patches_seeds.png").stat().st_size > 0
    # the learning curves: each seed's history from the run folder its results name, and their mean by hand
    curves = s["learning_curves"]
    assert s["learning_curves_missing"] == []
    assert curves["greedy policy's reward"]["finetune"] == {"epochs": [2], "seeds": [[0.2], [0.4]], "mean": [0.3]}
    assert curves["classifier loss"]["classifiers LR"]["mean"] == [2.0]
    assert (tmp_path / "out" / "training_curves_seeds.png").stat().st_size > 0
    # a run folder without a history: the table still comes, the curves are left out with a warning
    (tmp_path / "s1" / "models" / "training_state.npz").unlink()
    proc = seeds("s0", "s1", "--output", "out2")
    assert proc.returncode == 0 and "warning: no learning curves:" in proc.stderr and "training_state" in proc.stderr
    assert json.loads((tmp_path / "out2" / "seeds.json").read_text())["learning_curves"] is None
    assert not (tmp_path / "out2" / "training_curves_seeds.png").exists()
    # --models: each seed's run folder in place of the one its results name (s0's twice: the mean is s0's own)
    proc = seeds("s0", "s1", "--output", "out3", "--models", str(tmp_path / "s0" / "models"), "s0/models")
    assert proc.returncode == 0, proc.stderr
    mean = json.loads((tmp_path / "out3" / "seeds.json").read_text())["learning_curves"]
    assert mean["greedy policy's reward"]["finetune"]["mean"] == [0.2]
    proc = seeds("s0", "s1", "--models", "s0/models")
    assert proc.returncode == 2 and "--models: 1 folders for 2 results folders" in proc.stderr
    proc = seeds("none")
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "no such results file" in proc.stderr
    assert proc.stderr.count("\n") == 1


NETWORK_FIELDS = {"grid", "lr_size", "classifier_blocks", "policy_blocks", "width", "run_eagerly", "execution"}
RUN_FIELDS = {"preset", "dataset", "seed", "canvas_size", "digit_size", "clutter", "train_per_digit"}
RUN_FIELDS |= {"test_per_digit", "data_seed", "train_limit", "test_limit", "eval_batch", "random_draws", "max_pictures"}
RUN_FIELDS |= {"val_fraction", "patch_budget"}


def test_agent_config_holds_the_agents_fields_with_the_papers_defaults():
    """The agent's hyperparameters live in PatchDropAgentConfig (defaults: the paper's README values, by hand);
    the run's config adds only run and data fields (those in PatchDataConfig) and redefines none of the agent's."""
    import dataclasses
    import inspect

    from zoomrl.agents.patchdrop.config import PatchDropAgentConfig
    from zoomrl.data.patch_digits import PatchDataConfig
    from zoomrl.experiments.patchdrop.config import PatchDropConfig

    agent_fields = {f.name for f in dataclasses.fields(PatchDropAgentConfig)}
    run_defaults = {f.name: f for f in dataclasses.fields(PatchDropConfig)}
    assert set(run_defaults) - agent_fields == RUN_FIELDS and not agent_fields & RUN_FIELDS
    # no agent field declared again; the data's fields beside the data (what load_for reads)
    data_fields = {"dataset", "canvas_size", "digit_size", "clutter", "train_per_digit", "test_per_digit"}
    data_fields |= {"data_seed", "train_limit", "test_limit", "val_fraction"}
    assert set(inspect.get_annotations(PatchDataConfig)) == data_fields
    assert set(inspect.get_annotations(PatchDropConfig)) == RUN_FIELDS - data_fields
    paper = PatchDropAgentConfig()
    hand = dict(classifier_lr=0.1, classifier_batch=128, classifier_optimizer="sgd", weight_decay=5e-4)
    hand.update(pretrain_lr=1e-4, pretrain_batch=1024, pretrain_sigma=0.5, finetune_lr=1e-4, finetune_batch=128)
    hand.update(finetune_sigma=10.0, alpha=0.8, lr_size=8, grid=4, classifier_blocks=5, policy_blocks=1)
    assert {k: getattr(paper, k) for k in hand} == hand
    assert make_config("paper").to_dict() == {**paper.to_dict(), **PatchDropConfig().to_dict()}


def test_stage_fields_cover_every_trained_field_once():
    """Every agent field but the networks' belongs to exactly one stage (``--stage N`` may change those of N and
    later); the networks' and the run's fields to none."""
    import dataclasses

    from zoomrl.agents.patchdrop.config import STAGE_FIELDS, STAGES, PatchDropAgentConfig

    assert list(STAGE_FIELDS) == list(STAGES)
    listed = [f for fields in STAGE_FIELDS.values() for f in fields]
    assert len(listed) == len(set(listed))
    assert set(listed) == {f.name for f in dataclasses.fields(PatchDropAgentConfig)} - NETWORK_FIELDS


def test_agent_config_stage_helpers_and_checks_hand_values():
    from zoomrl.agents.patchdrop.config import PatchDropAgentConfig

    fast, tiny = make_config("fast"), make_config("tiny")
    assert fast.stage_ends() == [8, 11, 14, 15] and tiny.stage_ends() == [1, 2, 4, 5]
    assert fast.run_epochs() == 15 and tiny.run_epochs() == 5
    # run epoch (0-based) -> (stage index, epoch within the stage, 1-based); tiny: 1, 1, 2, 1 epochs
    assert [tiny.stage_at(e) for e in range(5)] == [(0, 1), (1, 1), (2, 1), (2, 2), (3, 1)]
    assert fast.stage_at(7) == (0, 8) and fast.stage_at(8) == (1, 1) and fast.stage_at(14) == (3, 1)
    assert [fast.stage_batch(s) for s in ("classifiers", "pretrain", "finetune", "two_stream")] == [128, 64, 64, 64]
    assert fast.stage_sigmas("pretrain") == [0.5, 2.0] and fast.stage_sigmas("finetune") == [1.0]
    assert fast.stage_sigmas("classifiers") == [0.5] and fast.stage_sigmas("two_stream") == [1.0]
    for bad, match in (
        ({"pretrain_batch": 0}, "pretrain_batch must be a positive integer"),
        ({"two_stream_epochs": -1}, "two_stream_epochs must be a non-negative integer"),
        ({"classifier_batch": 2.5}, "classifier_batch must be a positive integer"),
        ({"sigma_curve": [2.0]}, "must include pretrain_sigma"),
        ({"execution": "fast"}, "execution must be one of"),
    ):
        with pytest.raises(ConfigError, match=match):
            PatchDropAgentConfig(**bad).validate()
    assert PatchDropAgentConfig(classifier_epochs=0, sigma_curve=[2, 0.5]).validate().sigma_curve == [0.5, 2.0]
    with pytest.raises(ConfigError, match="canvas_size=30"):
        make_config("tiny", canvas_size=30)


def test_agent_builds_and_learns_from_the_agent_config_alone():
    """No run fields needed: the agent reads PatchDropAgentConfig (tiny networks, stage 3 compiled)."""
    from zoomrl.agents.patchdrop.agent import PatchDropAgent
    from zoomrl.agents.patchdrop.config import PatchDropAgentConfig

    cfg = PatchDropAgentConfig(classifier_blocks=1, width=4, run_eagerly=True, sigma_curve=[0.5, 3.0])
    agent = PatchDropAgent((32, 32, 1), 10, cfg.validate(), seed=0)
    assert (agent.patches, agent.lr_shape, agent.sigma, agent.alpha) == (16, (8, 8, 1), 0.5, 0.8)
    agent.configure("finetune", sigma=3.0)
    assert agent.sigma == 3.0 and sorted(agent.trained) == ["hr", "policy"]


def test_data_config_checks_its_fields_also_in_the_runs_config():
    """PatchDataConfig (the data's fields, beside the data) refuses bad values with one line naming the field,
    alone and as part of the run's configuration (its validate is reached through the agent config's)."""
    from zoomrl.data.patch_digits import PatchDataConfig

    assert PatchDataConfig().validate().dataset == "digits"
    bad_values = ({"dataset": "mnist"}, {"canvas_size": 0}, {"test_per_digit": 0}, {"clutter": -1}, {"test_limit": -2})
    for bad in bad_values:
        (name,) = bad
        with pytest.raises(ConfigError, match=name):
            PatchDataConfig(**bad).validate()
        with pytest.raises(ConfigError, match=name):
            make_config("tiny", **bad)
