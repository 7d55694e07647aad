"""Precise BatchNorm statistics (``precise_bn``, :mod:`zoomrl.agents.batchnorm`): the moving mean and variance
replaced by the plain average of the per-batch statistics with the final weights, checked against NumPy by hand;
and the patchdrop run applying it at the end of a stage, to the networks the stage trained only.

Mutations tried by hand, and the test that caught each:

* the momentum left at the layer's own (an exponential average, not the plain one): ``test_precise_batchnorm_...``;
* the momenta not restored afterwards: ``test_precise_batchnorm_...``;
* the trainee's call removed (``precise_bn`` read nowhere): ``test_stage_end_re_estimates_...``;
* stage 3's HR inputs sampled at ``alpha`` instead of the stage's last (``alpha_final``): ``test_hr_classifier_...``.
"""

import numpy as np

from zoomrl.agents.batchnorm import batchnorm_layers, precise_batchnorm
from zoomrl.agents.patchdrop.stages import read_groups
from zoomrl.core.checkpoint import read_latest
from zoomrl.experiments.patchdrop.config import make_config
from zoomrl.experiments.patchdrop.train import train

QUIET = dict(quiet=True, log=lambda m: None)


def _dense_bn():
    import keras

    inputs = keras.Input((3,))
    dense = keras.layers.Dense(2, name="dense")
    model = keras.Model(inputs, keras.layers.BatchNormalization(momentum=0.9, name="bn")(dense(inputs)))
    dense.set_weights([np.array([[1.0, 0.5], [-2.0, 1.0], [0.0, 3.0]]), np.array([0.5, -1.0])])
    return model


def test_precise_batchnorm_is_the_plain_mean_of_the_batch_statistics():
    """Three batches of different sizes through Dense -> BatchNorm: the moving mean is the mean of the three
    batch means of the Dense outputs, the moving variance the mean of their (biased) variances, computed here by
    NumPy; the weights and the layer's momentum are left as they were; no batch changes nothing."""
    model = _dense_bn()
    bn = model.get_layer("bn")
    assert batchnorm_layers(model) == [bn]
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(n, 3)).astype(np.float32) for n in (4, 6, 5)]
    before = [w.copy() for w in model.get_weights()]
    assert precise_batchnorm(model, iter([])) == 0
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    assert precise_batchnorm(model, batches) == 3
    kernel, bias = before[0], before[1]
    outs = [x.astype(np.float64) @ kernel + bias for x in batches]
    np.testing.assert_allclose(bn.moving_mean.numpy(), np.mean([o.mean(0) for o in outs], axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), np.mean([o.var(0) for o in outs], axis=0), rtol=1e-5)
    assert bn.momentum == 0.9
    for a, b in zip(model.get_weights()[:4], before[:4]):  # dense kernel and bias, gamma, beta
        np.testing.assert_array_equal(a, b)


def _split(net, off, on):
    """(trainable weights equal, some moving statistic differs) between two saved copies of ``net``'s weights."""
    trainable = {id(v) for v in net.trainable_variables}
    kinds = [id(v) in trainable for v in net.weights]
    assert len(kinds) == len(off) == len(on) and not all(kinds)
    same = all(np.array_equal(a, b) for t, a, b in zip(kinds, off, on) if t)
    moved = any(not np.array_equal(a, b) for t, a, b in zip(kinds, off, on) if not t)
    return same, moved


def test_stage_end_re_estimates_the_trained_networks_batchnorm_only(tmp_path):
    """Stages 1 and 2 of the tiny preset with and without ``precise_bn`` (same seed). Stage 1: the classifiers'
    trainable weights are the same, their moving statistics not. Stage 2 (started from each run's own stage 1)
    leaves the classifiers' statistics alone. The statistics set are those of the images by NumPy (the LR
    classifier's and the policies' first BatchNorm). The run's line says when it happened."""
    from zoomrl.agents.patchdrop.agent import PatchDropAgent

    groups = {}
    for on in (False, True):
        root = tmp_path / f"bn_{on}"
        for stage in ("classifiers", "pretrain"):
            lines = []
            train(make_config("tiny", precise_bn=on), root, stage, quiet=True, log=lines.append)
            assert any("precise_bn" in line for line in lines) is on
            groups[on, stage] = read_groups(root / read_latest(root)["files"]["weights.h5"])[0]
    agent = PatchDropAgent((32, 32, 1), 10, make_config("tiny"))
    for name, net in (("classifiers/hr", agent.hr), ("classifiers/lr", agent.lr)):
        assert _split(net, groups[False, "classifiers"][name], groups[True, "classifiers"][name]) == (True, True)
        for on in (False, True):  # stage 2 leaves the classifiers' statistics alone
            for a, b in zip(groups[on, "classifiers"][name], groups[on, "pretrain"][name]):
                np.testing.assert_array_equal(a, b)
    # with precise_bn the first BatchNorm of the LR classifier and of each policy (their inputs, the 8x8 images, are
    # not drawn; tiny's one batch of 32 holds every training image) holds the mean and variance over the images of
    # the first convolution's output, by NumPy; without it, not
    from zoomrl.agents.patchdrop.patches import low_resolution
    from zoomrl.data.patch_digits import load_for

    low = low_resolution(load_for(make_config("tiny"), "train")[0], 8).astype(np.float64)
    assert len(low) == 32
    for net, key, stage in [(agent.lr, "classifiers/lr", "classifiers")] + [
        (agent.policy, f"pretrain/sigma{s}/policy", "pretrain") for s in ("0.5", "2")
    ]:
        for on in (False, True):
            mean, var = _stem_statistics(net, groups[on, stage][key], low)
            assert np.allclose(mean[0], mean[1], rtol=1e-4, atol=1e-5) is on, (key, on)
            assert np.allclose(var[0], var[1], rtol=1e-3, atol=1e-5) is on, (key, on)


def _stem_statistics(net, weights, x):
    """((saved moving mean, NumPy mean), (saved moving variance, NumPy variance)) of ``net``'s first BatchNorm, over
    the output of its first convolution (3x3, same padding, no bias) on ``x``."""
    paths = [v.path for v in net.weights]
    kernel = weights[next(i for i, p in enumerate(paths) if "stem_conv" in p)]
    moving_mean = weights[next(i for i, p in enumerate(paths) if "stem_bn" in p and "moving_mean" in p)]
    moving_var = weights[next(i for i, p in enumerate(paths) if "stem_bn" in p and "moving_variance" in p)]
    pad = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, w = x.shape[1:3]
    out = sum(
        np.einsum("bhwc,cf->bhwf", pad[:, i : i + h, j : j + w], kernel[i, j].astype(np.float64))
        for i in range(3)
        for j in range(3)
    )
    return (moving_mean, out.mean(axis=(0, 1, 2))), (moving_var, out.var(axis=(0, 1, 2)))


def test_hr_classifier_is_recalibrated_on_what_its_stage_trained_it_on():
    """The HR classifier's recalibration inputs: stage 1 with masking drops whole patches, 0 to round(16 x 0.75)
    = 12 of them per image (whole images without masking); stage 3 keeps the patches sampled from the policy at
    the stage's last alpha: a policy that keeps nothing (its sigmoid's bias at -30) keeps a patch with probability
    1 - alpha_final = 0.05 after mixing, not 1 - alpha = 0.2 (1024 patches: 51 +- 7 expected)."""
    from zoomrl.agents.patchdrop.agent import PatchDropAgent

    rng = np.random.default_rng(0)
    images = rng.uniform(0.1, 1.0, size=(64, 32, 32, 1)).astype(np.float32)  # no pixel is 0 before masking

    def kept(x):
        patches = x.reshape(64, 4, 8, 4, 8).transpose(0, 1, 3, 2, 4).reshape(64, 16, 64)
        zero, whole = (patches == 0).all(-1), (patches != 0).all(-1)
        assert (zero | whole).all()  # whole patches only
        return whole.sum(1)

    cfg = make_config("tiny", classifier_mask_max=0.75, alpha_final=0.95)
    agent = PatchDropAgent((32, 32, 1), 10, cfg)
    agent.configure("classifiers")
    counts = kept(agent._hr_training_inputs(images, np.random.default_rng(1)))
    assert counts.min() >= 4 and counts.max() == 16 and counts.mean() < 12
    agent.mask_max = 0.0
    np.testing.assert_array_equal(agent._hr_training_inputs(images, np.random.default_rng(1)), images)
    agent.configure("finetune")
    agent.schedule(10)
    bias = agent.policy.net.layers[-1]
    bias.set_weights([bias.get_weights()[0], np.full(16, -30.0, np.float32)])
    assert 30 <= kept(agent._hr_training_inputs(images, np.random.default_rng(2))).sum() <= 75
