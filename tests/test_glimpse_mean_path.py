"""glimpse family, issue 19's clutter target: a validation split of the digit tasks, and training on the mean path.

* ``val_fraction``: whole training digit images held out (the same ones for every run and seed), one fixed canvas
  each; training epochs never draw them; ``glimpse test --eval-split val`` measures there.
* ``mean_path_weight``: every update adds the supervised loss of the deterministic mean path (the path the test's
  headline follows), from the model's own start or the sampled path's first location;
* ``learning_rate_final``: RAM's learning rate falls linearly over the epochs, set before each one.

Mutations tried by hand, and the test that caught each:

* training epochs drawn from every training digit (the held-out ones too):
  ``test_val_digits_are_held_out_of_every_training_epoch``;
* the held-out draw seeded by the run's seed: ``test_val_digits_are_held_out_of_every_training_epoch``;
* the mean path started at the centre for a uniform-start model: ``test_mean_path_loss_by_hand_from_the_sampled_
  start``;
* the mean-path term computed but left out of the total: ``test_mean_path_update_equals_a_supervised_update_on_
  that_path``;
* ``mean_path_weight`` not passed from the configuration to the model: ``test_the_option_reaches_ram_only``;
* ``glimpse test`` measuring the test split whatever ``eval_split`` says: ``test_test_command_measures_the_val_
  split``;
* the epoch's learning rate never set: ``test_training_sets_each_epochs_learning_rate``;
* ``set_learning_rate`` setting another value: ``test_a_compiled_step_reads_the_learning_rate_set``.
"""

from __future__ import annotations

import numpy as np
import pytest

from test_glimpse_options import images, np_, tiny_agent  # the same tiny RAM and batches
from zoomrl.agents.base import LabelledBatch
from zoomrl.agents.ram.agent import RamAgent, build_agent
from zoomrl.core.config import ConfigError
from zoomrl.data import splits
from zoomrl.data.digits import load_digit_images
from zoomrl.experiments.glimpse.config import make_config


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return float(-np.mean(logp[np.arange(len(y)), y]))


def rows(a: np.ndarray) -> set[bytes]:
    return {r.tobytes() for r in a}


# -- the validation split ---------------------------------------------------------------------------------------
def test_val_digits_are_held_out_of_every_training_epoch(monkeypatch):
    all_images, all_labels = load_digit_images("train")
    seen: list[np.ndarray] = []
    real = splits.cluttered_canvases

    def spy(images, labels, **kw):
        seen.append(np.asarray(images))
        return real(images, labels, **kw)

    monkeypatch.setattr(splits, "cluttered_canvases", spy)
    cfg = make_config("tiny", "classify", val_fraction=0.1, seed=0)
    data = splits.TaskData(cfg)
    val = data.val()
    data.train_epoch(0)
    val_digits, train_digits = seen
    # 144 of the 1438 training digits (round(0.1 * 1438)), disjoint, together the whole training set
    assert len(val_digits) == 144 and len(train_digits) == 1438 - 144
    assert not rows(val_digits) & rows(train_digits)
    assert rows(val_digits) | rows(train_digits) == rows(all_images)
    # one canvas per held-out digit, in order, with its label
    held = np.isin(np.arange(len(all_images)), np.flatnonzero([r.tobytes() in rows(val_digits) for r in all_images]))
    np.testing.assert_array_equal(val.targets, all_labels[held])
    assert val.images.shape == (144, 60, 60, 1)
    # the same validation canvases for another run seed (so runs are compared on the same images)
    other = splits.TaskData(make_config("tiny", "classify", val_fraction=0.1, seed=7)).val()
    np.testing.assert_array_equal(other.images, val.images)
    # without val_fraction training uses every training digit
    seen.clear()
    splits.TaskData(make_config("tiny", "classify", seed=0)).train_epoch(0)
    assert len(seen[0]) == 1438


def test_val_split_errors():
    with pytest.raises(ConfigError, match="val_fraction"):
        make_config("tiny", "classify", val_fraction=0.6)
    with pytest.raises(ConfigError, match="val_fraction applies to the digit datasets"):
        make_config("tiny", "regress", dataset="some/voc/folder", val_fraction=0.1)
    with pytest.raises(ConfigError, match="eval_split val needs"):
        make_config("tiny", "classify", eval_split="val")
    with pytest.raises(ConfigError, match="eval_split"):
        make_config("tiny", "classify", eval_split="train", val_fraction=0.1)
    with pytest.raises(ValueError, match="no validation split"):
        splits.TaskData(make_config("tiny", "classify")).val()


def test_test_command_measures_the_val_split(tmp_path):
    """Train a tiny CNN with a validation split, test it on ``val``: the error is the one recomputed here on
    ``TaskData.val()``, and the results say which split."""
    from zoomrl.core.io import read_json
    from zoomrl.core.runner import WEIGHTS
    from zoomrl.experiments.glimpse.test import test
    from zoomrl.experiments.glimpse.train import train

    cfg = make_config("tiny", "classify", val_fraction=0.05, models="cnn")
    train(cfg, tmp_path / "m", quiet=True)
    res = test(cfg.replace(eval_split="val"), tmp_path / "m", tmp_path / "r", quiet=True, log=lambda s: None)
    assert res["split"] == "val" and res["test_size"] == 72  # round(0.05 * 1438)
    data = splits.TaskData(cfg)
    agent = build_agent("cnn", cfg, data.image_shape(), 10, "classify", cfg.seed)
    agent.load_weights(tmp_path / "m" / "cnn" / read_json(tmp_path / "m" / "cnn" / "latest.json")["files"][WEIGHTS])
    val = data.val()
    assert res["models"]["cnn"]["error"] == pytest.approx(
        float(np.mean(agent.predict(val.images).argmax(1) != val.targets))
    )
    on_test = test(cfg, tmp_path / "m", tmp_path / "r2", quiet=True, log=lambda s: None)
    assert on_test["split"] == "test" and on_test["test_size"] == cfg.test_size


# -- the mean-path loss -----------------------------------------------------------------------------------------
def test_mean_path_loss_by_hand_from_the_sampled_start():
    """A uniform-start model: the logged mean-path loss is the cross-entropy of the deterministic path from the
    sampled path's first location, on the weights before the update."""
    x, y = images(24)
    agent = tiny_agent(mean_path_weight=0.5)
    m = agent.model
    agent.reseed(5)
    _, _, locs, _ = m.rollout(x[..., None], None, True)
    first = np_(locs)[:, 0].astype(np.float32)
    out_mean, _ = agent.rollout(x, first, stochastic=False)
    expected = cross_entropy(np.asarray(out_mean, np.float64), y)
    from_centre, _ = agent.rollout(x, np.zeros_like(first), stochastic=False)
    assert abs(cross_entropy(np.asarray(from_centre, np.float64), y) - expected) > 1e-4  # the start matters
    agent.reseed(5)
    logs = agent.learn(LabelledBatch(x, y))
    assert logs["mean_path"] == pytest.approx(expected, rel=1e-5)
    assert "mean_path" not in tiny_agent().learn(LabelledBatch(x, y))  # off: no such term


def test_mean_path_update_equals_a_supervised_update_on_that_path():
    """With a location std of 1e-7 the sampled path is the mean path, so one SGD step on the mean-path loss alone
    (supervised_weight 0) must move every weight as one step on the sampled path's supervised loss alone does (no
    REINFORCE in either)."""
    import keras

    x, y = images(24)
    deltas = []
    for sup, mean in ((1.0, 0.0), (0.0, 1.0)):
        keras.utils.set_random_seed(0)  # the same initial weights
        agent = tiny_agent(
            first_location="centre", loc_std=1e-7, reinforce_weight=0.0, supervised_weight=sup, mean_path_weight=mean
        )
        before = agent.weights()
        agent.learn(LabelledBatch(x, y))
        deltas.append([a - b for a, b in zip(agent.weights(), before, strict=True)])
    moved = sum(float(np.abs(d).sum()) for d in deltas[0])
    assert moved > 1e-2  # not vacuous
    for a, b in zip(*deltas, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_the_option_reaches_ram_only():
    cfg = make_config("tiny", "classify", mean_path_weight=0.7)
    assert build_agent("ram", cfg, (60, 60, 1), 10, "classify", 0).model.mean_path_weight == 0.7
    assert build_agent("random", cfg, (60, 60, 1), 10, "classify", 0).model.mean_path_weight == 0.0
    with pytest.raises(ConfigError, match="mean_path_weight"):
        make_config("tiny", "classify", mean_path_weight=-1.0)


# -- the learning-rate decay ------------------------------------------------------------------------------------
def test_learning_rate_schedule_by_hand():
    from zoomrl.agents.ram.config import RamConfig, learning_rate_at

    cfg = RamConfig(learning_rate=0.3, learning_rate_final=0.1)
    assert [round(learning_rate_at(cfg, e, 3), 10) for e in range(4)] == [0.3, 0.2, 0.1, 0.1]
    assert [learning_rate_at(RamConfig(learning_rate=0.3), e, 3) for e in range(3)] == [0.3] * 3
    with pytest.raises(ConfigError, match="learning_rate_final"):
        make_config("tiny", "classify", learning_rate_final=-0.1)


def test_a_compiled_step_reads_the_learning_rate_set():
    """Plain SGD: after the step was traced at 0.5, a second step at 0.2 moves every weight twice as far as the
    same step at 0.1 (same weights, batch and draws)."""
    import keras

    x, y = images(24)
    deltas = []
    for rate in (0.1, 0.2):
        keras.utils.set_random_seed(0)
        agent = tiny_agent(run_eagerly=False)
        agent.learn(LabelledBatch(x, y))  # traced at the built rate, 0.5
        agent.set_learning_rate(rate)
        agent.reseed(3)
        before = agent.weights()
        agent.learn(LabelledBatch(x, y))
        deltas.append([a - b for a, b in zip(agent.weights(), before, strict=True)])
    assert sum(float(np.abs(d).sum()) for d in deltas[0]) > 1e-3
    for a, b in zip(*deltas, strict=True):
        np.testing.assert_allclose(b, 2.0 * a, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("model", ["ram", "random"])
def test_training_sets_each_epochs_learning_rate(model, monkeypatch, tmp_path):
    from zoomrl.experiments.glimpse.train import train_model

    seen: list[float] = []
    monkeypatch.setattr(RamAgent, "set_learning_rate", lambda self, v: seen.append(v))
    cfg = make_config("tiny", "classify", epochs=3, learning_rate=0.3, learning_rate_final=0.1, models=model)
    out = train_model(model, cfg, splits.TaskData(cfg), tmp_path / model, quiet=True, log=lambda s: None)
    if model == "ram":
        assert [round(v, 10) for v in seen] == [0.3, 0.2, 0.1]
        assert [h["learning_rate"] for h in out["history"]] == [0.3, 0.2, 0.1]
    else:  # RAM's option alone: random glimpses keep their rate
        assert seen == [] and "learning_rate" not in out["history"][-1]
