"""zoomrl.data.digits: the offline digit images, the canvases and the MNIST loader (no download)."""

from __future__ import annotations

import numpy as np
import pytest

from zoomrl.data.digits import (
    PROTOCOLS,
    cluttered_canvases,
    ink_centroid,
    load_digit_images,
    load_mnist_canvases,
    split_indices,
)


def test_digit_images_split_is_fixed_stratified_and_disjoint():
    from sklearn.datasets import load_digits

    x_train, y_train = load_digit_images("train")
    x_test, y_test = load_digit_images("test")
    assert x_train.shape == (1438, 28, 28) and x_test.shape == (359, 28, 28)
    assert x_train.dtype == np.float32 and 0.0 <= x_train.min() and x_train.max() <= 1.0
    # Stratified 80/20: each class gives round(0.2 * its count) to test.
    counts = np.bincount(load_digits().target)
    assert np.array_equal(np.bincount(y_test), np.round(0.2 * counts).astype(int))
    idx = split_indices(load_digits().target)
    assert not set(idx["train"]) & set(idx["test"]) and len(idx["train"]) + len(idx["test"]) == 1797
    # Test image k is the upscaled sklearn image idx["test"][k]: bilinear keeps the mean grey level roughly.
    raw = load_digits().images[idx["test"]] / 16.0
    assert np.array_equal(y_test, load_digits().target[idx["test"]])
    assert np.allclose(x_test.mean(axis=(1, 2)), raw.mean(axis=(1, 2)), atol=0.05)
    # Returns copies.
    x_test[:] = 0
    assert load_digit_images("test")[0].max() > 0
    with pytest.raises(ValueError, match="split must be one of"):
        load_digit_images("val")


def constant_digits(n: int = 5, s: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """Digit k is a square of constant grey (k + 1) / 10: where every pixel came from can be read off."""
    images = np.stack([np.full((s, s), (k + 1) / 10, np.float32) for k in range(n)])
    return images, np.arange(n)


def test_cluttered_canvases_place_the_digit_in_its_box_and_clutter_from_other_digits():
    images, labels = constant_digits()
    canvases, labs, boxes, pick = cluttered_canvases(
        images, labels, size=60, n_pieces=4, piece=8, n=40, seed=3, return_indices=True
    )
    assert canvases.shape == (40, 60, 60) and canvases.dtype == np.float32 and boxes.shape == (40, 4)
    assert np.array_equal(labs, labels[pick])
    for c, b, j in zip(canvases, boxes.astype(int), pick):
        x1, y1, x2, y2 = b
        assert x2 - x1 == 28 and y2 - y1 == 28 and 0 <= x1 and x2 <= 60 and 0 <= y1 and y2 <= 60
        inside = c[y1:y2, x1:x2]
        assert np.all(inside >= images[j])  # the digit is whole (pieces only add by maximum)
        outside = c.copy()
        outside[y1:y2, x1:x2] = 0
        values = set(np.unique(outside).round(3)) - {0.0}
        assert round((j + 1) / 10, 3) not in values  # pieces come from other digits
        assert np.count_nonzero(outside) <= 4 * 8 * 8
    # Deterministic for a seed; another seed places differently.
    again = cluttered_canvases(images, labels, size=60, n_pieces=4, piece=8, n=40, seed=3)
    assert np.array_equal(again[0], canvases) and np.array_equal(again[2], boxes)
    other = cluttered_canvases(images, labels, size=60, n_pieces=4, piece=8, n=40, seed=4)
    assert not np.array_equal(other[2], boxes)


def test_translated28_is_the_digit_itself_and_clutter_counts():
    images, labels = constant_digits(3)
    canvases, _, boxes = cluttered_canvases(images, labels, **PROTOCOLS["translated28"])
    assert np.array_equal(canvases, images) and np.array_equal(boxes, np.tile([0, 0, 28, 28], (3, 1)))
    # One piece of 8x8 on a 100x100 canvas: exactly 64 clutter pixels when it does not touch the digit.
    blank = np.zeros((2, 28, 28), np.float32)
    blank[1] = 1.0  # the piece comes from image 1 when image 0 is placed
    c, _, b, pick = cluttered_canvases(
        blank, np.arange(2), size=100, n_pieces=1, piece=8, n=30, seed=0, return_indices=True
    )
    for canvas, box, j in zip(c, b.astype(int), pick):
        if j == 0:
            x1, y1, x2, y2 = box
            canvas = canvas.copy()
            canvas[y1:y2, x1:x2] = 0
            assert np.count_nonzero(canvas) <= 64
    with pytest.raises(ValueError, match="canvas size must be at least"):
        cluttered_canvases(images, labels, size=20)
    with pytest.raises(ValueError, match="one entry per image"):
        cluttered_canvases(images, labels[:2])


def test_ink_centroid_by_hand():
    img = np.zeros((1, 28, 28), np.float32)
    img[0, 3, 5] = 1.0
    img[0, 3, 7] = 1.0  # two pixels in row 3, columns 5 and 7: centre x = 6.5, y = 3.5
    assert np.allclose(ink_centroid(img, np.array([[10, 20, 38, 48]])), [[16.5, 23.5]])


def test_mnist_canvases_from_a_synthetic_array():
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    y_train, y_test = np.arange(12) % 10, np.arange(6)
    loader = lambda: ((x_train, y_train), (x_test, y_test))  # noqa: E731
    canvases, labels, boxes = load_mnist_canvases("test", size=60, n_pieces=4, piece=8, seed=1, loader=loader)
    assert canvases.shape == (6, 60, 60) and np.array_equal(labels, y_test)
    for c, b, k in zip(canvases, boxes.astype(int), range(6)):
        assert np.all(c[b[1] : b[3], b[0] : b[2]] >= x_test[k] / 255.0 - 1e-6)
    bad = lambda: ((x_train[:, :20], y_train), (x_test, y_test))  # noqa: E731
    with pytest.raises(ValueError, match=r"must be \(n, 28, 28\)"):
        load_mnist_canvases("train", loader=bad)
