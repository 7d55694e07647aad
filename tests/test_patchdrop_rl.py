"""PatchDrop's NumPy side and data, against hand computations: masks, low resolution, exploration mixing, reward,
self-critical advantage, random budgets, two-stream scores, the digit canvases and the CIFAR loader."""

import numpy as np
import pytest

from zoomrl.agents.patchdrop import patches as pt
from zoomrl.data.patch_digits import load_cifar, make_canvases, prepare_cifar


def test_mask_patches_matches_hand_loop():
    rng = np.random.default_rng(0)
    images = rng.random((3, 8, 12, 2)).astype(np.float32)
    actions = (rng.random((3, 16)) < 0.5).astype(np.float32)
    expected = np.zeros_like(images)
    for b in range(3):
        for k in range(16):
            r, c = divmod(k, 4)  # row by row, patches of 2 x 3 pixels
            if actions[b, k]:
                expected[b, r * 2 : r * 2 + 2, c * 3 : c * 3 + 3] = images[b, r * 2 : r * 2 + 2, c * 3 : c * 3 + 3]
    np.testing.assert_array_equal(pt.mask_patches(images, actions), expected)
    # patch 5 (row 1, column 1) alone keeps exactly rows 2-3, columns 3-5
    one = np.zeros((1, 16), np.float32)
    one[0, 5] = 1
    m = pt.patch_mask(one, 8, 12)[0, ..., 0]
    assert m.sum() == 6 and m[2:4, 3:6].all()
    with pytest.raises(ValueError, match="grid"):
        pt.mask_patches(np.zeros((1, 10, 10, 1)), one)


def test_low_resolution_is_block_mean():
    x = np.arange(2 * 4 * 4 * 1, dtype=np.float32).reshape(2, 4, 4, 1)
    low = pt.low_resolution(x, 2)
    assert low.shape == (2, 2, 2, 1)
    assert low[0, 0, 0, 0] == pytest.approx((0 + 1 + 4 + 5) / 4)
    assert low[1, 1, 1, 0] == pytest.approx((26 + 27 + 30 + 31) / 4)
    with pytest.raises(ValueError, match="multiple"):
        pt.low_resolution(x, 3)


def test_mixing_greedy_and_sampling():
    p = np.array([[0.0, 0.5, 0.9, 1.0]])
    # 0.8 p + 0.2 (1 - p): 0.9 -> 0.72 + 0.02
    np.testing.assert_allclose(pt.mix_probabilities(p, 0.8), [[0.2, 0.5, 0.74, 0.8]])
    np.testing.assert_allclose(pt.mix_probabilities(p, 1.0), p)
    np.testing.assert_array_equal(pt.greedy_actions([[0.49, 0.5, 0.51]]), [[0, 1, 1]])
    draws = pt.sample_actions(np.full((20000, 2), [0.2, 0.74]), np.random.default_rng(1))
    np.testing.assert_allclose(draws.mean(0), [0.2, 0.74], atol=0.01)


def test_reward_and_self_critical_advantage():
    actions = np.zeros((3, 16), np.float32)
    actions[0, :4] = 1  # S = 4: 1 - (4/16)^2 = 0.9375
    actions[1, :8] = 1  # S = 8, wrong: -sigma
    actions[2, :] = 1  # S = 16: 0
    r = pt.reward([True, False, True], actions, sigma=0.5)
    np.testing.assert_allclose(r, [0.9375, -0.5, 0.0])
    greedy = np.zeros((3, 16), np.float32)
    greedy[:, :2] = 1  # S = 2: 1 - 1/64 = 0.984375 when right
    rg = pt.reward([False, True, True], greedy, sigma=0.5)
    np.testing.assert_allclose(rg, [-0.5, 0.984375, 0.984375])
    np.testing.assert_allclose(pt.self_critical_advantage(r, rg), [1.4375, -1.484375, -0.984375])


def test_random_actions_keep_budgets():
    counts = np.array([0, 3, 16, 7])
    a = pt.random_actions(counts, 16, np.random.default_rng(2))
    np.testing.assert_array_equal(a.sum(1), counts)
    # uniform: each patch equally likely under a budget of 4
    many = pt.random_actions(np.full(16000, 4), 16, np.random.default_rng(3))
    np.testing.assert_allclose(many.mean(0), 0.25, atol=0.02)


def test_two_stream_weights_by_patches_used():
    hr = np.array([[1.0, 0.0], [0.2, 0.8]])
    lr = np.array([[0.0, 1.0], [0.6, 0.4]])
    a = np.zeros((2, 16))
    a[0, :4] = 1  # 4/16 = 0.25 of HR
    a[1, :12] = 1  # 0.75 of HR
    np.testing.assert_allclose(pt.two_stream(hr, lr, a), [[0.25, 0.75], [0.3, 0.7]])


def test_canvases_hold_the_digit_in_its_box_and_clutter_outside():
    rng = np.random.default_rng(0)
    digits = (rng.random((5, 28, 28)) > 0.5).astype(np.float32)
    labels = np.arange(5)
    x, y, boxes = make_canvases(digits, labels, per_digit=3, canvas_size=32, digit_size=12, clutter=4, seed=1)
    assert x.shape == (15, 32, 32, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(y, np.repeat(labels, 3))
    assert ((boxes[:, 2] - boxes[:, 0]) == 12).all() and (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 32).all()
    assert len({tuple(b) for b in boxes}) > 1  # different places
    for i in range(15):
        x1, y1, x2, y2 = boxes[i]
        outside = x[i, ..., 0].copy()
        outside[max(y1 - 1, 0) : y2 + 1, max(x1 - 1, 0) : x2 + 1] = 0
        assert outside.sum() > 0  # clutter exists, outside the digit's square
        assert x[i, y1:y2, x1:x2, 0].sum() > 0
    x2_, _, b2 = make_canvases(digits, labels, per_digit=3, canvas_size=32, digit_size=12, clutter=4, seed=1)
    np.testing.assert_array_equal(x, x2_)  # only depends on the seed
    with pytest.raises(ValueError, match="digit_size"):
        make_canvases(digits, labels, digit_size=40)


def test_cifar_loader_on_a_synthetic_array():
    rng = np.random.default_rng(0)
    xtr = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    ytr = np.array([[0], [9], [3], [3], [1], [2]], np.uint8)
    xte = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    yte = np.array([[4], [5]], np.uint8)
    fake = lambda: ((xtr, ytr), (xte, yte))  # noqa: E731
    x, y = load_cifar("cifar10", "train", loader=fake)
    assert x.shape == (6, 32, 32, 3) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(x, xtr / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, [0, 9, 3, 3, 1, 2])
    x, y = load_cifar("cifar100", "test", loader=fake)
    np.testing.assert_array_equal(y, [4, 5])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 9\]"):
        prepare_cifar(xtr, ytr + 5, "cifar10")
    with pytest.raises(ValueError, match=r"\(n, 32, 32, 3\)"):
        prepare_cifar(xtr[:, :16], ytr, "cifar10")

    def offline():
        raise ConnectionError("no network")

    with pytest.raises(OSError, match="cifar10: could not load"):
        load_cifar("cifar10", "train", loader=offline)
