"""PatchDrop's networks: ResNet-32 and ResNet-8 layouts counted, the REINFORCE loss against NumPy, the agent's
self-critical wiring, and one policy update under the JAX backend (subprocess)."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from zoomrl.agents.base import LabelledBatch


def _resnet_params(blocks, in_ch, outputs, widths=(16, 32, 64)):
    """Parameters of a CIFAR ResNet by hand: bias-free 3x3 convolutions, 4 BatchNorm values per channel,
    option-A shortcuts (no parameters), a dense head."""
    convs = [(in_ch, widths[0])]
    prev = widths[0]
    for w in widths:
        for _ in range(blocks):
            convs += [(prev, w), (w, w)]
            prev = w
    conv = sum(9 * a * b for a, b in convs)
    bn = sum(4 * b for _, b in convs)
    return len(convs), conv + bn + widths[-1] * outputs + outputs, conv + bn // 2 + widths[-1] * outputs + outputs


def test_resnet32_and_resnet8_layouts():
    import keras

    from zoomrl.agents.patchdrop.resnet import ZeroPadShortcut, cifar_resnet

    m = cifar_resnet((32, 32, 3), 5, 10)
    convs = [layer for layer in m.layers if isinstance(layer, keras.layers.Conv2D)]
    dense = [layer for layer in m.layers if isinstance(layer, keras.layers.Dense)]
    assert len(convs) == 1 + 30 and len(dense) == 1  # 3 stages x 5 basic blocks x 2 convolutions, + stem
    assert [layer.filters for layer in convs].count(16) == 11 and [layer.filters for layer in convs].count(32) == 10
    assert [layer.filters for layer in convs].count(64) == 10
    assert all(layer.kernel_size == (3, 3) for layer in convs)
    assert [layer.strides for layer in convs].count((2, 2)) == 2
    assert sum(isinstance(layer, ZeroPadShortcut) for layer in m.layers) == 2
    n_conv, total, trainable = _resnet_params(5, 3, 10)
    assert n_conv == 31 and total == 466426  # He et al.: 0.46M
    assert m.count_params() == total
    assert sum(int(np.prod(w.shape)) for w in m.trainable_weights) == trainable
    p = cifar_resnet((8, 8, 3), 1, 16, "sigmoid")
    assert len([layer for layer in p.layers if isinstance(layer, keras.layers.Conv2D)]) == 1 + 6
    assert p.count_params() == _resnet_params(1, 3, 16)[1]
    assert p.output_shape == (None, 16)
    # option A: subsample by 2, zero channels appended symmetrically
    x = np.arange(2 * 4 * 4 * 2, dtype=np.float32).reshape(2, 4, 4, 2)
    out = np.asarray(keras.ops.convert_to_numpy(ZeroPadShortcut(6, 2)(x)))
    assert out.shape == (2, 2, 2, 6)
    np.testing.assert_array_equal(out[..., 2:4], x[:, ::2, ::2, :])
    assert not out[..., :2].any() and not out[..., 4:].any()


def test_reinforce_loss_matches_numpy():
    from zoomrl.agents.patchdrop.policy import PolicyNetwork

    net = PolicyNetwork((4, 4, 1), patches=16, blocks=1, width=4, alpha=0.7)
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.95, (5, 16)).astype(np.float32)
    a = (rng.random((5, 16)) < 0.5).astype(np.float32)
    adv = rng.normal(size=5).astype(np.float32)
    y = np.concatenate([a, adv[:, None]], 1)
    loss = float(net.compute_loss(y=y, y_pred=p))
    pm = 0.7 * p + 0.3 * (1 - p)
    ref = -np.mean((a * np.log(pm) + (1 - a) * np.log(1 - pm)) * adv[:, None])
    assert loss == pytest.approx(ref, rel=1e-5)


def test_policy_update_follows_the_advantage():
    """Positive advantage for keeping every patch raises every probability; negative lowers them."""
    import keras

    from zoomrl.agents.patchdrop.policy import PolicyNetwork

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(1).random((8, 4, 4, 1)).astype(np.float32)
    for sign in (1.0, -1.0):
        net = PolicyNetwork((4, 4, 1), patches=16, blocks=1, width=4, alpha=0.8)
        net.compile(optimizer=keras.optimizers.SGD(0.5), run_eagerly=True)
        before = np.asarray(net(x)).mean()
        y = np.concatenate([np.ones((8, 16)), np.full((8, 1), sign)], 1).astype(np.float32)
        for _ in range(3):
            net.train_on_batch(x, y)
        after = np.asarray(net(x)).mean()
        assert (after - before) * sign > 0


def test_agent_feeds_the_self_critical_advantage():
    from zoomrl.agents.patchdrop import patches as pt
    from zoomrl.agents.patchdrop.agent import PatchDropAgent, forward
    from zoomrl.experiments.patchdrop.config import make_config

    cfg = make_config("tiny", alpha=0.8)
    agent = PatchDropAgent((16, 16, 1), 10, cfg, seed=0, sigma=0.7)
    agent.configure("pretrain")
    rng = np.random.default_rng(0)
    images = rng.random((6, 16, 16, 1)).astype(np.float32)
    labels = rng.integers(0, 10, 6)
    # what the agent will draw: same generator state, same networks, the policy in training mode (this batch's
    # BatchNorm statistics, as the update sees it)
    probs = np.asarray(agent.policy(pt.low_resolution(images, cfg.lr_size), training=True), np.float64)
    twin = np.random.default_rng()
    twin.bit_generator.state = agent.rng.bit_generator.state
    sampled = (twin.random(probs.shape) < 0.8 * probs + 0.2 * (1 - probs)).astype(np.float32)
    greedy = (probs >= 0.5).astype(np.float32)
    pred_s = forward(agent.hr, images * pt.patch_mask(sampled, 16, 16)).argmax(1)
    pred_g = forward(agent.hr, images * pt.patch_mask(greedy, 16, 16)).argmax(1)
    r = lambda ok, a: np.where(ok, 1 - (a.sum(1) / 16) ** 2, -0.7)  # noqa: E731
    expected = r(pred_s == labels, sampled) - r(pred_g == labels, greedy)
    seen = {}
    agent.policy.train_on_batch = lambda x, y: seen.setdefault("y", y) is None or 0.0
    out = agent.learn(LabelledBatch(images, labels))
    np.testing.assert_array_equal(seen["y"][:, :16], sampled)
    np.testing.assert_allclose(seen["y"][:, 16], expected, rtol=1e-6)
    assert out["patches"] == pytest.approx(sampled.sum(1).mean())


def _first_bn(net):
    import keras

    return next(layer for layer in net.net.layers if isinstance(layer, keras.layers.BatchNormalization))


def test_learn_samples_from_the_probabilities_it_differentiates(monkeypatch):
    """Issue 20: the actions are drawn from (and the greedy baseline read off) the probabilities whose
    log-likelihood the update differentiates: the policy in training mode on this batch. The moving statistics
    are updated once, by the update (momentum 0.9: 0.1 of this batch's mean, from 0)."""
    import keras

    from zoomrl.agents.patchdrop import patches as pt
    from zoomrl.agents.patchdrop.agent import PatchDropAgent, forward
    from zoomrl.experiments.patchdrop.config import make_config

    keras.utils.set_random_seed(0)
    agent = PatchDropAgent((16, 16, 1), 10, make_config("tiny"), seed=0)
    agent.configure("pretrain")
    rng = np.random.default_rng(1)
    images = (3.0 + rng.random((8, 16, 16, 1))).astype(np.float32)  # far from the fresh moving mean 0, variance 1
    labels = rng.integers(0, 10, 8)
    low = pt.low_resolution(images, agent.lr_shape[0])
    seen = {}
    mix = pt.mix_probabilities
    monkeypatch.setattr(pt, "mix_probabilities", lambda p, a: (seen.setdefault("sampled_from", p), mix(p, a))[1])
    loss = agent.policy.compute_loss

    def spy(*args, **kw):
        y_pred = kw["y_pred"] if "y_pred" in kw else args[2]
        seen["differentiated"] = np.asarray(keras.ops.convert_to_numpy(y_pred), np.float64)
        return loss(*args, **kw)

    monkeypatch.setattr(agent.policy, "compute_loss", spy)
    bn = _first_bn(agent.policy)
    stem = agent.policy.net.get_layer("policy_net_stem_conv")
    batch_mean = np.asarray(keras.ops.convert_to_numpy(stem(low)), np.float64).mean(axis=(0, 1, 2))
    inference = forward(agent.policy, low)
    agent.learn(LabelledBatch(images, labels))
    np.testing.assert_allclose(seen["sampled_from"], seen["differentiated"], atol=1e-5)
    assert np.abs(seen["sampled_from"] - inference).max() > 0.05  # the two modes differ here: not vacuous
    moving = np.asarray(keras.ops.convert_to_numpy(bn.moving_mean), np.float64)
    np.testing.assert_allclose(moving, 0.1 * batch_mean, rtol=1e-4, atol=1e-6)


def _trainable(net):
    return [np.array(w) for w in net.trainable_weights]


def test_finetune_trains_the_classifier_at_finetune_classifier_lr():
    """Issue 20: stage 3 compiles the HR classifier with finetune_classifier_lr, the policy with finetune_lr.
    Adam's first step moves every weight with a gradient by about its learning rate (m / sqrt(v) = sign(g))."""
    import keras

    from zoomrl.agents.patchdrop.agent import PatchDropAgent
    from zoomrl.experiments.patchdrop.config import make_config

    keras.utils.set_random_seed(0)
    agent = PatchDropAgent((16, 16, 1), 10, make_config("tiny", finetune_lr=1e-3, finetune_classifier_lr=2e-5), seed=0)
    agent.configure("finetune")
    rng = np.random.default_rng(0)
    images, labels = rng.random((8, 16, 16, 1)).astype(np.float32), rng.integers(0, 10, 8)
    hr0, pol0 = _trainable(agent.hr), _trainable(agent.policy)
    agent.learn(LabelledBatch(images, labels))
    step_hr = max(np.abs(a - b).max() for a, b in zip(_trainable(agent.hr), hr0))
    step_policy = max(np.abs(a - b).max() for a, b in zip(_trainable(agent.policy), pol0))
    assert step_hr == pytest.approx(2e-5, rel=0.02) and step_policy == pytest.approx(1e-3, rel=0.02)


def test_weight_decay_is_an_l2_penalty_coupled_to_the_gradient():
    """weight_decay adds weight_decay * w to the gradient before the optimizer's rule (PyTorch's, the paper
    code's), not Keras's decoupled decay. Adam, zero gradient: the first step is lr * sign(w) (decoupled decay
    would move w by lr * wd * w). SGD with momentum 0.9, two steps, by hand."""
    import keras

    from zoomrl.agents.patchdrop.optim import make_optimizer

    w0 = np.array([1.0, -2.0, 3.0], np.float32)
    v = keras.Variable(w0)
    make_optimizer("adam", 0.01, 0.1).apply([keras.ops.zeros(3)], [v])
    np.testing.assert_allclose(np.asarray(v), w0 - 0.01 * np.sign(w0), rtol=1e-5)

    lr, wd, g1, g2 = 0.1, 0.5, np.array([0.3, 0.0, -1.0]), np.array([1.0, 2.0, 0.5])
    v = keras.Variable(w0)
    opt = make_optimizer("sgd", lr, wd)
    for g in (g1, g2):
        opt.apply([keras.ops.convert_to_tensor(g.astype(np.float32))], [v])
    buf1 = g1 + wd * w0
    w1 = w0 - lr * buf1
    w2 = w1 - lr * (0.9 * buf1 + g2 + wd * w1)
    np.testing.assert_allclose(np.asarray(v), w2, rtol=1e-5)


def test_weight_decay_reaches_the_stage_1_classifiers_only():
    """With a zero gradient, weight_decay alone moves the classifiers' weights in stage 1 (Adam's first step on
    the gradient g = wd * w: lr * g / (|g| + eps / sqrt(1 - beta_2)), about lr towards 0); the policy's optimizer
    in stage 2 has none."""
    import keras

    from zoomrl.agents.patchdrop.agent import PatchDropAgent
    from zoomrl.experiments.patchdrop.config import make_config

    agent = PatchDropAgent((16, 16, 1), 10, make_config("tiny", weight_decay=0.1, classifier_lr=1e-3), seed=0)
    for stage, nets in (("classifiers", (agent.hr, agent.lr)), ("pretrain", (agent.policy,))):
        agent.configure(stage)
        for net in nets:
            before = _trainable(net)
            net.optimizer.apply([keras.ops.zeros_like(w) for w in net.trainable_weights], net.trainable_weights)
            for a, b in zip(_trainable(net), before):
                g = 0.1 * b.astype(np.float64)
                expected = b - 1e-3 * g / (np.abs(g) + 1e-7 / np.sqrt(1 - 0.999)) if stage == "classifiers" else b
                np.testing.assert_allclose(a, expected, rtol=1e-4, atol=1e-7)


JAX_SCRIPT = r"""
import numpy as np, keras
assert keras.backend.backend() == "jax", keras.backend.backend()
from zoomrl.agents.patchdrop.policy import PolicyNetwork
keras.utils.set_random_seed(0)
net = PolicyNetwork((4, 4, 1), patches=16, blocks=1, width=2, alpha=0.8)
net.compile(optimizer=keras.optimizers.Adam(1e-2))
x = np.random.default_rng(0).random((8, 4, 4, 1)).astype("float32")
before = [w.copy() for w in net.get_weights()]
y = np.concatenate([np.ones((8, 16)), np.ones((8, 1))], 1).astype("float32")  # keep all, advantage 1
loss = float(np.ravel(net.train_on_batch(x, y))[0])
p = np.asarray(net(x)).astype("float64")
expect = -np.mean(np.log(0.8 * p + 0.2 * (1 - p)))  # the surrogate at the new weights, for comparison
changed = sum(not np.array_equal(a, b) for a, b in zip(before, net.get_weights()))
assert np.isfinite(loss) and changed > 0 and expect < loss, (loss, expect, changed)
print("ok jax", changed)
"""


def test_policy_update_under_jax():
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    # XLA's cheapest CPU compilation: the op-by-op compiles of a first JAX call dominate this test
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": str(REPO),
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true",
    }
    proc = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT], capture_output=True, text=True, env=env, timeout=300, cwd=str(REPO)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().startswith("ok jax")
