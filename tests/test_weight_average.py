"""glimpse family, issue 19: ``weight_average``, a moving average of the trainable weights (Polyak averaging).

The optimizer keeps ``average = m * average + (1 - m) * weights`` after every update (the first update sets the
average to the weights), the weights file holds the average, the run state the raw weights, and ``glimpse test``
measures the average with the raw weights' figures beside it (``unaveraged``).

Mutations tried by hand, and the test that caught each:

* the option not passed from the configuration to RAM's optimizer: ``test_the_option_reaches_every_model``;
* the weights file written with the raw weights: ``test_the_average_by_hand_and_the_weights_file``;
* saving left the model on the average (training then continues from it): ``test_the_average_by_hand_and_the_
  weights_file`` and ``test_the_updates_do_not_change``;
* the raw weights not saved in, or not restored from, the run state: ``test_a_resumed_agent_continues_both``;
* the test reporting the average as ``unaveraged``: ``test_the_test_reports_both_and_raw_equals_a_plain_run``.
"""

from __future__ import annotations

import numpy as np
import pytest

from test_glimpse_options import images, tiny_agent  # the same tiny RAM and batches
from zoomrl.agents.base import LabelledBatch
from zoomrl.agents.ram.agent import build_agent
from zoomrl.core.config import ConfigError
from zoomrl.data import splits
from zoomrl.experiments.glimpse.config import make_config

M = 0.6  # a momentum far from 0 and 1, so that each term of the average is visible


def batches(n: int = 3) -> list[LabelledBatch]:
    return [LabelledBatch(*images(16, seed=s)) for s in range(n)]


def close(a: list[np.ndarray], b: list[np.ndarray], tol: float = 1e-5) -> bool:
    return len(a) == len(b) and all(np.allclose(x, y, atol=tol, rtol=tol) for x, y in zip(a, b, strict=True))


def test_the_average_by_hand_and_the_weights_file(tmp_path):
    """After three updates the weights file holds a1 = w1, a_k = M a_(k-1) + (1 - M) w_k of the raw weights w_k
    recorded after each update; the agent that saved it keeps training from w3."""
    agent = tiny_agent(weight_average=M)
    assert agent.averaged
    raw = []
    for b in batches():
        agent.reseed(3)
        agent.learn(b)
        raw.append(agent.raw_weights())
    expected = raw[0]
    for w in raw[1:]:
        expected = [M * a + (1 - M) * x for a, x in zip(expected, w, strict=True)]
    assert not close(expected, raw[-1], 1e-4)  # the average is not the last weights
    agent.save_weights(tmp_path / "w.weights.h5")
    assert close(agent.raw_weights(), raw[-1], 0)  # saving left the raw weights in place
    fresh = tiny_agent(weight_average=M)
    fresh.load_weights(tmp_path / "w.weights.h5")
    assert close(fresh.raw_weights(), expected)


def test_the_updates_do_not_change():
    """The averaging changes no update: the raw weights and losses equal those of the same agent without it."""
    a, b = tiny_agent(weight_average=M), tiny_agent()
    a.set_raw_weights(b.raw_weights())  # the same start (each model draws its own initial weights)
    for batch in batches():
        a.reseed(7), b.reseed(7)
        la, lb = a.learn(batch), b.learn(batch)
        assert la["loss"] == pytest.approx(lb["loss"], rel=1e-6)
    assert close(a.raw_weights(), b.raw_weights(), 1e-6)


def test_a_resumed_agent_continues_both(tmp_path):
    """Weights file (the average) plus run state (the raw weights, the optimizer with the average) restore an agent
    that continues exactly: one more update gives the same raw weights and the same saved average."""
    a = tiny_agent(weight_average=M)
    for batch in batches(2):
        a.reseed(1)
        a.learn(batch)
    a.save_weights(tmp_path / "a.weights.h5")
    state = a.get_state()
    assert int(state["raw_weight_count"]) == len(a.raw_weights())
    b = tiny_agent(weight_average=M)
    b.load_weights(tmp_path / "a.weights.h5")
    b.set_state(state)
    assert close(b.raw_weights(), a.raw_weights(), 0)
    last = batches(3)[2]
    for agent in (a, b):
        agent.reseed(2)
        agent.learn(last)
    assert close(b.raw_weights(), a.raw_weights(), 1e-6)
    a.save_weights(tmp_path / "a2.weights.h5")
    b.save_weights(tmp_path / "b2.weights.h5")
    fa, fb = tiny_agent(weight_average=M), tiny_agent(weight_average=M)
    fa.load_weights(tmp_path / "a2.weights.h5")
    fb.load_weights(tmp_path / "b2.weights.h5")
    assert close(fa.raw_weights(), fb.raw_weights(), 1e-6)
    assert "raw_weight_count" not in tiny_agent().get_state()  # off: the state is as before
    with pytest.raises(ValueError, match="no raw weights"):
        tiny_agent().use_raw_weights(tiny_agent().get_state())


@pytest.mark.parametrize("name", ["ram", "random", "cnn", "mlp"])
def test_the_option_reaches_every_model(name):
    """RAM and random glimpses average; the whole-image baselines do not (too few updates for 0.999)."""
    cfg = make_config("tiny", "classify", weight_average=0.9)
    agent = build_agent(name, cfg, (60, 60, 1), 10, "classify", 0)
    if name in ("cnn", "mlp"):
        assert not agent.averaged
        return
    assert agent.averaged and agent.model.optimizer.ema_momentum == pytest.approx(0.9)
    assert not build_agent(name, make_config("tiny", "classify"), (60, 60, 1), 10, "classify", 0).averaged


@pytest.mark.parametrize("value", [-0.1, 1.0])
def test_bad_momentum_is_refused(value):
    with pytest.raises(ConfigError, match="weight_average"):
        make_config("tiny", "classify", weight_average=value)


def test_the_test_reports_both_and_raw_equals_a_plain_run(tmp_path):
    """A tiny RAM and CNN trained with averaging and without, same seed: the averaging run's ``unaveraged``
    figures are the plain run's exactly, and its weights file holds other weights (the average)."""
    from zoomrl.core.io import read_json
    from zoomrl.core.runner import WEIGHTS
    from zoomrl.experiments.glimpse.test import test

    def weights_file(run_dir):
        return run_dir / read_json(run_dir / "latest.json")["files"][WEIGHTS]

    from zoomrl.experiments.glimpse.train import train

    quiet = dict(quiet=True, log=lambda s: None)
    cfg = make_config("tiny", "classify", models="ram,cnn", epochs=2, baseline_epochs=2)
    avg = cfg.replace(weight_average=0.5)
    train(cfg, tmp_path / "plain", **quiet)
    train(avg, tmp_path / "avg", **quiet)
    plain = test(cfg, tmp_path / "plain", tmp_path / "rp", **quiet)["models"]
    res = test(avg, tmp_path / "avg", tmp_path / "ra", **quiet)["models"]
    assert "unaveraged" not in plain["cnn"] and "unaveraged" not in plain["ram"]
    assert "unaveraged" not in res["cnn"] and res["cnn"]["error"] == plain["cnn"]["error"]  # RAM's option alone
    assert res["ram"]["unaveraged"]["mean_path"] == plain["ram"]["mean_path"]
    data = splits.TaskData(avg)
    agent = build_agent("ram", avg, data.image_shape(), 10, "classify", avg.seed)
    agent.load_weights(weights_file(tmp_path / "avg" / "ram"))
    raw = build_agent("ram", cfg, data.image_shape(), 10, "classify", cfg.seed)
    raw.load_weights(weights_file(tmp_path / "plain" / "ram"))
    assert not close(agent.raw_weights(), raw.raw_weights(), 1e-5)  # the file holds the average, not the last
