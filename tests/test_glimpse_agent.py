"""RAM's gradients and test modes: REINFORCE reaches the location network only, the supervised loss everything
else; random glimpses have no policy; the mean path is deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from zoomrl.agents.base import LabelledBatch
from zoomrl.agents.ram.agent import RamAgent

TINY = dict(
    glimpses=3, glimpse_size=4, scales=2, glimpse_hidden=8, loc_hidden=8, glimpse_units=16, core_units=16, loc_std=0.2
)


def tiny_agent(task="classify", **kw):
    return RamAgent(
        (16, 16, 1),
        optimizer="sgd",
        learning_rate=0.1,
        momentum=0.0,
        jit_compile=False,
        run_eagerly=True,
        seed=1,
        task=task,
        n_outputs=10 if task == "classify" else 2,
        **{**TINY, **kw},
    )


def snapshot(layers):
    import keras

    return [np.array(keras.ops.convert_to_numpy(w)) for layer in layers for w in layer.weights]


def moved(before, after):
    return any(not np.allclose(a, b, atol=0, rtol=0) for a, b in zip(before, after))


def data(task, n=16):
    rng = np.random.default_rng(0)
    x = rng.random((n, 16, 16), dtype=np.float32)
    if task == "classify":
        return x, rng.integers(0, 10, n)
    return x, np.concatenate([rng.uniform(-1, 1, (n, 2)), np.full((n, 1), 2.0)], axis=1).astype(np.float32)


@pytest.mark.parametrize("task,core", [("classify", "relu"), ("regress", "gru")])
def test_only_the_location_network_takes_the_reinforce_gradient(task, core):
    x, y = data(task)
    # Supervised weight 0: glimpse network, core and head stay put; the location network moves.
    agent = tiny_agent(task, core=core, supervised_weight=0.0)
    m = agent.model
    sup0, loc0, base0 = snapshot(m.supervised_layers()), snapshot(m.location_layers()), snapshot([m.baseline])
    agent.learn(LabelledBatch(x, y))
    assert not moved(sup0, snapshot(m.supervised_layers()))
    assert moved(loc0, snapshot(m.location_layers()))
    assert moved(base0, snapshot([m.baseline]))  # the baseline learns from (R - b)^2 alone
    # REINFORCE weight 0: the location network stays put, the rest learns from the supervised loss.
    agent = tiny_agent(task, core=core, reinforce_weight=0.0)
    m = agent.model
    sup0, loc0 = snapshot(m.supervised_layers()), snapshot(m.location_layers())
    agent.learn(LabelledBatch(x, y))
    assert moved(sup0, snapshot(m.supervised_layers()))
    assert not moved(loc0, snapshot(m.location_layers()))


def test_reinforce_surrogate_matches_a_numpy_computation():
    """The loss with supervised weight 0 equals -mean_i sum_t (R_i - b_it) log pi(l_it) + mean (R - b)^2."""
    import keras

    x, y = data("classify", 8)
    agent = tiny_agent("classify", supervised_weight=0.0)
    m = agent.model
    agent.reseed(5)
    out, means, locs, bases = (np.asarray(keras.ops.convert_to_numpy(t)) for t in m.rollout(x, None, True))
    reward = (out.argmax(1) == y).astype(np.float64)
    log_pi = -((locs[:, 1:] - means) ** 2).sum(-1) / (2 * 0.2**2)
    adv = reward[:, None] - bases
    expected = -np.mean((adv * log_pi).sum(1)) + np.mean(adv**2)
    got = float(keras.ops.convert_to_numpy(m.compute_loss(x, y, (out, means, locs, bases))))
    assert np.isclose(got, expected, rtol=1e-5)
    # Sampled locations lie within [-1, 1] and follow the means up to the policy's noise.
    assert np.all(np.abs(locs) <= 1.0) and 0.05 < np.std(locs[:, 1:] - means) < 0.4


def test_random_glimpses_have_no_policy_and_the_mean_path_is_deterministic():
    x, y = data("classify")
    agent = tiny_agent("classify", random_locations=True)
    loc0 = snapshot(agent.model.location_layers())
    agent.learn(LabelledBatch(x, y))
    assert not moved(loc0, snapshot(agent.model.location_layers()))
    first = np.zeros((len(x), 2), np.float32)
    _, paths = agent.predict(x, "mean", first_locations=first)
    assert np.std(paths[:, 0, 1:]) > 0.3  # uniform draws, not the (near-constant) network means

    learned = tiny_agent("classify")
    p1, path1 = learned.predict(x, "mean", first_locations=first)
    p2, path2 = learned.predict(x, "mean", first_locations=first)
    assert np.array_equal(p1, p2) and np.array_equal(path1, path2)
    import keras

    # The mean path's second location is tanh(W h_1) of the first glimpse: recompute it from the layers.
    m = learned.model
    g = m.glimpse_features(x[..., None], first)
    h, _ = m._core(g, m._initial_state(len(x)))
    expect = np.tanh(np.asarray(keras.ops.convert_to_numpy(m.locator(h))))
    assert np.allclose(path1[:, 0, 1], expect, atol=1e-5)
    # Monte-Carlo: S paths per image, probabilities averaged (rows sum to 1); other seeds give other paths.
    learned.reseed(1)
    mc1, paths_mc = learned.predict(x, "sample", samples=3)
    learned.reseed(2)
    mc2, _ = learned.predict(x, "sample", samples=3)
    assert paths_mc.shape == (len(x), 3, 3, 2) and np.allclose(mc1.sum(1), 1.0, atol=1e-5)
    assert not np.allclose(mc1, mc2)


def test_lstm_core_and_conv_glimpse_network_train():
    x, y = data("regress")
    x = np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)  # 32x32 for the conv glimpse network
    agent = RamAgent(
        (32, 32, 1),
        jit_compile=False,
        run_eagerly=True,
        task="regress",
        n_outputs=2,
        glimpses=2,
        glimpse_size=8,
        scales=1,
        glimpse_net="conv",
        core="lstm",
        glimpse_units=8,
        core_units=8,
        loc_hidden=4,
    )
    logs = agent.learn(LabelledBatch(x, y))
    assert np.isfinite(logs["loss"]) and 0.0 <= logs["reward"] <= 1.0
    out, paths = agent.predict(x, "mean", first_locations=np.zeros((len(x), 2), np.float32))
    assert out.shape == (len(x), 2) and paths.shape == (len(x), 1, 2, 2)


def test_begin_epoch_reseeds_the_draws_and_restarts_the_running_metrics():
    """The loop's only per-epoch call (``BatchAgent.begin_epoch``): after it, an update depends on the weights,
    the optimizer state and the seed alone, not on the draws made before it (RAM's sampled glimpses); and the logs
    are the batch's own, not means that run on from the batch before. Mutation caught: ``reseed`` left out of
    ``begin_epoch``."""
    x, y = data("classify")
    a, b = tiny_agent("classify"), tiny_agent("classify")
    a.learn(LabelledBatch(x[:8], y[:8]))
    b.model.set_weights(a.model.get_weights())
    b.set_state(a.get_state())  # the optimizer's slots and the random generator's state
    b.predict(x, "sample", samples=3)  # draws that advance b's generator alone
    a.begin_epoch(5)
    b.begin_epoch(5)
    logs_a, logs_b = a.learn(LabelledBatch(x[8:], y[8:])), b.learn(LabelledBatch(x[8:], y[8:]))
    assert logs_a == logs_b  # a's first batch is not in its logs, b's extra draws not in its glimpses
    assert all(np.array_equal(u, v) for u, v in zip(a.model.get_weights(), b.model.get_weights()))


def test_learn_pass_averages_equal_batches_and_refuses_a_non_finite_loss():
    """``learn_pass`` (an epoch of the glimpse trainer) against :meth:`learn` called by hand on the same batches by
    an identical agent: 40 images in batches of 16 are two batches (the last 8 wait), the logs their mean. NaN
    images make the loss NaN: a ``FloatingPointError`` naming the model. Mutations caught: the sum instead of the
    mean, the remainder trained as a third batch, the finiteness check removed."""
    x, y = data("classify", n=40)
    steps: list[int] = []
    agent, by_hand = tiny_agent(), tiny_agent()
    by_hand.model.set_weights(agent.model.get_weights())
    agent.begin_epoch(3)
    by_hand.begin_epoch(3)  # the same draws from here on
    logs = agent.learn_pass(x, y, 16, steps.append, "ram")
    batches = [by_hand.learn(LabelledBatch(x[i : i + 16], y[i : i + 16])) for i in (0, 16)]
    assert steps == [16, 16] and set(logs) == set(batches[0])
    for k in logs:
        assert logs[k] == pytest.approx((batches[0][k] + batches[1][k]) / 2, rel=1e-6), k
    x[:16] = np.nan  # every glimpse of the first batch reads NaN
    with pytest.raises(FloatingPointError, match="^the loss of ram is not finite$"):
        tiny_agent().learn_pass(x, y, 16, steps.append, "ram")
