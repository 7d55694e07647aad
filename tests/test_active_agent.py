"""The active family end to end, in-process: tiny training and testing, exact resume, the scratch CNN, the command
line."""

import json

import numpy as np
import pytest

from conftest import TinyFeatures
from zoomrl.experiments.active.config import make_config
from zoomrl.experiments.active.train import train


def _quiet(_):
    pass


@pytest.fixture(scope="module")
def data(square_voc):
    return square_voc


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """Two tiny epochs straight (the reference of the resume test too)."""
    models = tmp_path_factory.mktemp("active_models")
    out = train(_cfg(), [data / "train"], "trainval", models, features=TinyFeatures(), log=_quiet, show_progress=False)
    return models, out


def _cfg(**kw):
    return make_config("tiny", class_object="box", **kw)


def test_tiny_train_and_test_in_process(data, trained, tmp_path):
    from zoomrl.experiments.active.test import test

    models, out = trained
    run = models / "box"
    assert len(out["history"]) == 2 and (run / "epoch_2.weights.h5").is_file() and (run / "latest.json").is_file()
    saved = json.loads((run / "config.json").read_text())
    assert saved["trigger_iou"] == 0.6 and saved["history_length"] == 10
    res = test(
        _cfg(),
        [data / "test"],
        "test",
        None,
        tmp_path / "r",
        model_dir=models,
        features=TinyFeatures(),
        log=_quiet,
        show_progress=False,
        bool_draw=True,
    )
    det = json.loads((tmp_path / "r" / "detections.json").read_text())["images"]
    assert len(det) == 2 and all(r["windows_analysed"] == 10 for r in det)  # tiny: 10 steps per image
    assert all(r["searches"][0]["start"] == [0, 0, 64, 64] for r in det)
    triggered = sum(s["triggered"] for r in det for s in r["searches"])
    tr, aar = res["agent"]["terminal_regions"], res["agent"]["all_attended_regions"]
    assert tr["n_detections"] == triggered and tr["n_positives"] == 2
    assert 1 <= aar["n_detections"] <= 20  # every analysed box, after NMS
    assert res["oracle"]["terminal_regions"]["ap_voc07"] > 0.5  # the oracle finds the squares
    from zoomrl.envs.oracles import whole_image_records
    from zoomrl.eval.detection import evaluate

    # the whole-image baseline, on the same images, by the same AP code
    assert res["whole_image"]["terminal_regions"]["ap_area"] == evaluate(whole_image_records(det))["ap_area"]
    assert res["whole_image"]["terminal_regions"]["n_detections"] == 2
    for name in ("results.json", "pr_curve.png", "recall_vs_proposals.png", "windows_per_object.png"):
        assert (tmp_path / "r" / name).is_file()
    assert len(list((tmp_path / "r" / "pictures").glob("*.png"))) == 2


def test_resume_is_exact(data, trained, tmp_path):
    import keras

    kw = dict(features=TinyFeatures(), log=_quiet, show_progress=False)
    straight = trained[1]
    train(_cfg(epochs=1), [data / "train"], "trainval", tmp_path / "b", **kw)
    resumed = train(_cfg(epochs=2), [data / "train"], "trainval", tmp_path / "b", resume=True, **kw)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]

    def weights(path):
        from zoomrl.experiments.active.train import build_agent

        agent = build_agent(_cfg(), 36 + 90)
        agent.load_weights(path)
        return [np.asarray(keras.ops.convert_to_numpy(w)) for w in agent.model.weights]

    for a, b in zip(weights(straight["weights"]), weights(resumed["weights"])):
        np.testing.assert_array_equal(a, b)


def test_modern_options_reach_the_run(data, tmp_path):
    logs = []
    cfg = _cfg(
        epochs=1,
        demo_ratio=0.5,
        bc_epochs=1,
        bc_updates_per_epoch=3,
        n_step=3,
        target_update_every=5,
        double_dqn=True,
        fine_smaller=True,
        continuous_trigger=True,
    )
    out = train(
        cfg, [data / "train"], "trainval", tmp_path / "m", features=TinyFeatures(), log=logs.append, show_progress=False
    )
    assert any(line.startswith("demonstrations:") for line in logs)
    assert any("behaviour-cloning warm-up: 3 updates" in line for line in logs)
    from pathlib import Path

    from zoomrl.agents.dqn.checkpoint import read_weights_meta

    assert read_weights_meta(Path(out["weights"]))["num_actions"] == 10  # the tenth action
    assert read_weights_meta(Path(out["weights"]))["state_size"] == 36 + 10 * 10


def test_command_line_flags_map_to_the_configuration():
    from zoomrl.experiments.active.cli import build_parser, make_run_config

    args = build_parser("train").parse_args(
        [
            "--preset",
            "tiny",
            "--double-dqn",
            "--target-update-every",
            "7",
            "--n-step",
            "3",
            "--demo-ratio",
            "0.25",
            "--bc-epochs",
            "1",
            "--fine-smaller",
            "--continuous-trigger",
            "--no-guided-exploration",
            "--features",
            "scratch",
            "--class-object",
            "cat",
            "--number-of-steps",
            "5",
            "--test-steps",
            "30",
        ]
    )
    c = make_run_config(args)
    assert (c.double_dqn, c.target_update_every, c.n_step, c.demo_ratio, c.bc_epochs) == (True, 7, 3, 0.25, 1)
    assert (c.fine_smaller, c.continuous_trigger, c.guided_exploration, c.features) == (True, True, False, "scratch")
    assert (c.class_object, c.number_of_steps, c.test_steps, c.num_actions) == ("cat", 5, 30, 10)
    paper = make_config("paper")
    assert (paper.epochs, paper.alpha, paper.history_length, paper.number_of_steps, paper.test_steps) == (
        15,
        0.2,
        10,
        40,
        200,
    )
    assert [round(paper.epsilon(e), 2) for e in range(7)] == [1.0, 0.82, 0.64, 0.46, 0.28, 0.1, 0.1]


def test_bad_input_is_one_line(tmp_path, capsys):
    from zoomrl.experiments.cli import main

    assert main(["active", "train", "--data", str(tmp_path / "nowhere"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "nowhere" in err[0]


def test_scratch_network_shapes_and_pixels():
    import keras

    from zoomrl.agents.dqn import scratch
    from zoomrl.agents.dqn.scratch import PIXELS, build_scratch_qnetwork
    from zoomrl.vision import pixels
    from zoomrl.vision.features import Request
    from zoomrl.vision.pixels import PixelCrops

    # the network's input layout (agents) and the feature model's descriptor (vision) are declared apart: they agree
    assert PIXELS == pixels.PIXELS == PixelCrops().descriptor_size == 84 * 84 * 3
    assert (scratch.SIDE, scratch.CHANNELS) == (pixels.SIDE, pixels.CHANNELS)
    net = build_scratch_qnetwork(PIXELS + 90, 9, hidden_units=32, dropout=0.0)
    assert net.get_layer("conv_1").output.shape[1:] == (20, 20, 32)
    assert net.get_layer("conv_3").output.shape[1:] == (7, 7, 64)
    assert net.get_layer("with_history").output.shape[1:] == (7 * 7 * 64 + 90,)
    q = keras.ops.convert_to_numpy(net(np.zeros((2, PIXELS + 90), np.float32)))
    assert q.shape == (2, 9)
    with pytest.raises(ValueError, match="21168"):
        build_scratch_qnetwork(100, 9)
    img = np.zeros((50, 80, 3), np.uint8)
    img[10:30, 20:60] = (255, 0, 51)
    crops = PixelCrops().describe([Request("i", (), img, (20, 10, 60, 30))])
    assert crops.shape == (1, PIXELS)
    np.testing.assert_allclose(crops.reshape(84, 84, 3)[40, 40], [1.0, 0.0, 0.2], atol=1e-6)


def test_validation_every_k_epochs_chooses_the_score_that_testing_uses(data, tmp_path, monkeypatch):
    """``val_fraction`` and ``val_every 2`` over 3 epochs: validation after epochs 2 and 3 only (the last always),
    ``best`` among those; ``--score auto`` tests the best checkpoint with the score validation chose there, and
    ``agent_by_score`` holds every score's terminal-region AP beside it (the agent's TR is the chosen one's);
    ``--aar-score auto`` likewise for all attended regions, from the same validations."""
    import zoomrl.experiments.active.train as train_module
    from zoomrl.experiments.active.test import test

    aps = iter([{"trigger_q": 0.6, "trigger_advantage": 0.1}, {"trigger_q": 0.2, "trigger_advantage": 0.3}])
    aar = iter([{"trigger_q": 0.1, "trigger_advantage": 0.4}, {"trigger_q": 0.5, "trigger_advantage": 0.2}])
    calls: list[int] = []

    def fake_validate(images, store, features, agent, config, scored=None):
        calls.append(len(images))
        return next(aps), next(aar)

    monkeypatch.setattr(train_module, "validate", fake_validate)
    cfg = _cfg(epochs=3, val_fraction=0.25, val_every=2)
    out = train(
        cfg, [data / "train"], "trainval", tmp_path / "m", features=TinyFeatures(), log=_quiet, show_progress=False
    )
    assert calls == [1, 1]  # one of the 4 images held out, validated twice
    assert [h["val_ap"] for h in out["history"]] == [None, 0.6, 0.3]
    record = json.loads((tmp_path / "m" / "box" / "validation.json").read_text())
    # the best epoch is the terminal regions' (epoch 2), with the attended regions' choice at that epoch beside it
    assert record["best"] == {
        "epoch": 2,
        "score": "trigger_q",
        "ap": 0.6,
        "aar_score": "trigger_advantage",
        "aar_ap": 0.4,
    }
    assert [(e["aar_score"], e["aar_ap"]) for e in record["epochs"]] == [("trigger_advantage", 0.4), ("trigger_q", 0.5)]
    assert json.loads((tmp_path / "m" / "box" / "best.json").read_text())["epoch"] == 2
    kw = dict(model_dir=tmp_path / "m", features=TinyFeatures(), log=_quiet, show_progress=False, baselines=False)
    res = test(_cfg(score="auto"), [data / "test"], "test", None, tmp_path / "r", **kw)
    assert res["score"] == "trigger_advantage"  # the latest checkpoint: epoch 3's choice
    by_score = res["agent_by_score"]
    assert set(by_score) == {"trigger_q", "trigger_advantage", "trigger_probability", "trigger_order"}
    assert res["agent"]["terminal_regions"]["ap_area"] == by_score["trigger_advantage"]["ap_area"]
    assert "all_attended_regions" in res["agent"] and res["aar_score"] == "trigger_q"  # the default
    # --aar-score auto: the attended regions' choice at the checkpoint tested (best: epoch 2; latest: epoch 3)
    for checkpoint, tr, aar in ((None, "trigger_advantage", "trigger_q"), ("best", "trigger_q", "trigger_advantage")):
        res = test(_cfg(score="auto", aar_score="auto"), [data / "test"], "test", checkpoint, tmp_path / "r", **kw)
        assert (res["score"], res["aar_score"], res["config"]["aar_score"]) == (tr, aar, aar), checkpoint
        assert res["agent"]["all_attended_regions"]["ap_area"] == res["aar_by_score"][aar]["ap_area"]


def test_validation_ap_is_the_active_test_protocol(data, trained, tmp_path):
    """:func:`validate` on a set of images gives, score by score, the terminal-region and all-attended-region APs
    that ``active test`` reports on the same images with the same network."""
    from zoomrl.agents.dqn.agent import DQNAgent
    from zoomrl.data.images import ImageStore, load_images
    from zoomrl.experiments.active.test import test
    from zoomrl.experiments.active.train import state_size_of, validate

    models, _ = trained
    cfg = _cfg()
    features = TinyFeatures()
    agent = DQNAgent(state_size_of(cfg, features), cfg.num_actions, cfg, seed=0)
    agent.load_weights(models / "box" / "epoch_2.weights.h5")
    images = load_images([data / "test"], "test", "box", False, None, _quiet, progress=False)
    got, got_aar = validate(images, ImageStore(), features, agent, cfg)
    kw = dict(model_dir=models, features=TinyFeatures(), log=_quiet, show_progress=False, baselines=False)
    res = test(cfg, [data / "test"], "test", None, tmp_path / "r", **kw)
    assert got == pytest.approx({k: v["ap_area"] for k, v in res["agent_by_score"].items()})
    # and the attended regions' APs under every attended-box score (no IoU head: no predicted_iou)
    assert got_aar == pytest.approx({k: v["ap_area"] for k, v in res["aar_by_score"].items()})
    assert set(got_aar) == {"trigger_q", "trigger_advantage"} and res["aar_score"] == "trigger_q"
    assert res["agent"]["terminal_regions"]["n_detections"] > 0
