"""Data of the ``patchdrop`` family: offline 10-class digit canvases (the default) and the CIFAR loaders.

Plain NumPy + Pillow (the CIFAR loaders ask ``keras.datasets`` for the arrays, a download, unless given a
``loader``). Images are ``(n, h, w, c)`` float32 in [0, 1]; labels ``(n,)`` int64.

**Digit canvases** (:func:`patch_digit_canvases`). The evidence sits in a few of the 4x4 = 16 patches: each
``canvas_size`` x ``canvas_size`` black canvas (32 or 64) holds one digit of scikit-learn's bundled digits
(:func:`zoomrl.data.digits.load_digit_images`, 28x28, shrunk to ``digit_size`` pixels; 12 on a 32x32 canvas) at a
uniformly random place, and ``clutter`` pieces of *other* digits (``digit_size // 2`` squares cut where the other
digit has ink) at random places that do not touch the digit's square. The label is the digit. A 12-pixel digit on
8-pixel patches touches 4 to 9 patches (about 6 on average), so keeping the right patches keeps the digit while
keeping random ones usually cuts it, and the clutter makes "where is there ink" a poor answer at high resolution.
Each digit image gives ``per_digit`` canvases at different places; ``train`` canvases come from the ``train``
digits, ``test`` canvases from the disjoint ``test`` digits (1438 and 359 images). The canvases only depend on
``seed`` and the arguments.

**CIFAR** (:func:`load_cifar`): ``keras.datasets.cifar10|cifar100`` (50000 train, 10000 test 32x32 RGB),
converted and checked by :func:`prepare_cifar`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from zoomrl.core.config import ConfigBase, require_choice, require_finite, require_positive_int
from zoomrl.data.digits import held_out

DATASETS = ("digits", "cifar10", "cifar100")
SPLITS = ("train", "test")
NUM_CLASSES = {"digits": 10, "cifar10": 10, "cifar100": 100}


def shrink(images: np.ndarray, size: int) -> np.ndarray:
    """``(n, h, w)`` grey images -> ``(n, size, size)`` float32 (Pillow bilinear, clipped to [0, 1])."""
    from PIL import Image

    out = np.empty((len(images), size, size), np.float32)
    for i, im in enumerate(np.asarray(images, np.float32)):
        out[i] = np.asarray(Image.fromarray(im, mode="F").resize((size, size), Image.BILINEAR), np.float32)
    return np.clip(out, 0.0, 1.0)


def make_canvases(
    digits: np.ndarray,
    labels: np.ndarray,
    per_digit: int = 4,
    canvas_size: int = 32,
    digit_size: int = 12,
    clutter: int = 6,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Canvases ``(n, S, S, 1)``, labels ``(n,)`` and digit boxes ``(n, 4)`` (x1, y1, x2, y2 pixel edges) for
    ``n = len(digits) * per_digit``; canvas ``i`` shows digit ``i // per_digit``. See the module docstring."""
    digits = np.asarray(digits, np.float32)
    labels = np.asarray(labels).astype(np.int64)
    if digits.ndim != 3:
        raise ValueError(f"digits must be (n, h, w) grey images, received shape {digits.shape}")
    if len(labels) != len(digits):
        raise ValueError(f"labels must have one entry per digit: {len(labels)} labels for {len(digits)} digits")
    if not 2 <= digit_size <= canvas_size:
        raise ValueError(f"digit_size must lie in [2, canvas_size={canvas_size}], received {digit_size}")
    if per_digit < 1 or clutter < 0:
        raise ValueError(f"per_digit must be >= 1 and clutter >= 0, received {per_digit} and {clutter}")
    if clutter and len(digits) < 2:
        raise ValueError("clutter needs at least 2 digit images (pieces come from other digits)")
    rng = np.random.default_rng(seed)
    small = shrink(digits, digit_size)
    piece = max(digit_size // 2, 1)
    n = len(digits) * per_digit
    canvases = np.zeros((n, canvas_size, canvas_size), np.float32)
    boxes = np.zeros((n, 4), np.int64)
    span = canvas_size - digit_size + 1
    for i in range(n):
        src = i // per_digit
        x0, y0 = (int(v) for v in rng.integers(0, span, size=2))
        canvas = canvases[i]
        for _ in range(clutter):
            other = int(rng.integers(0, len(digits) - 1))
            other += other >= src  # never the placed digit itself
            # a window of the other digit that holds ink (the best of a few tries)
            best, best_ink = None, -1.0
            for _ in range(4):
                fy, fx = (int(v) for v in rng.integers(0, digit_size - piece + 1, size=2))
                cut = small[other, fy : fy + piece, fx : fx + piece]
                if cut.sum() > best_ink:
                    best, best_ink = cut, float(cut.sum())
            for _ in range(30):  # a place that does not touch the digit's square (1-pixel margin)
                px, py = (int(v) for v in rng.integers(0, canvas_size - piece + 1, size=2))
                if px + piece < x0 - 1 or px > x0 + digit_size or py + piece < y0 - 1 or py > y0 + digit_size:
                    np.maximum(
                        canvas[py : py + piece, px : px + piece], best, out=canvas[py : py + piece, px : px + piece]
                    )
                    break
        np.maximum(
            canvas[y0 : y0 + digit_size, x0 : x0 + digit_size],
            small[src],
            out=canvas[y0 : y0 + digit_size, x0 : x0 + digit_size],
        )
        boxes[i] = (x0, y0, x0 + digit_size, y0 + digit_size)
    return canvases[..., None], np.repeat(labels, per_digit), boxes


def patch_digit_canvases(
    split: str,
    per_digit: int = 4,
    canvas_size: int = 32,
    digit_size: int = 12,
    clutter: int = 6,
    seed: int = 0,
    limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The offline set's ``split`` (``train`` or ``test``): :func:`make_canvases` over the split's digits
    (the first ``limit`` digits only, when given). The two splits draw from different seeds."""
    from zoomrl.data.digits import load_digit_images

    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; received {split!r}")
    digits, labels = load_digit_images(split)
    if limit is not None:
        digits, labels = digits[:limit], labels[:limit]
    return make_canvases(
        digits,
        labels,
        per_digit=per_digit,
        canvas_size=canvas_size,
        digit_size=digit_size,
        clutter=clutter,
        seed=seed * 2 + SPLITS.index(split),
    )


def prepare_cifar(x: np.ndarray, y: np.ndarray, name: str = "cifar10") -> tuple[np.ndarray, np.ndarray]:
    """``keras.datasets`` CIFAR arrays -> images ``(n, 32, 32, 3)`` float32 in [0, 1], labels ``(n,)`` int64;
    a wrong shape, dtype or label range is a one-line error naming it."""
    if name not in ("cifar10", "cifar100"):
        raise ValueError(f"dataset must be cifar10 or cifar100, received {name!r}")
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 4 or x.shape[1:] != (32, 32, 3):
        raise ValueError(f"{name}: expected images of shape (n, 32, 32, 3), received {x.shape}")
    if x.dtype != np.uint8:
        raise ValueError(f"{name}: expected uint8 images (0..255), received {x.dtype}")
    y = y.reshape(-1)
    if len(y) != len(x):
        raise ValueError(f"{name}: {len(y)} labels for {len(x)} images")
    k = NUM_CLASSES[name]
    if len(y) and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"{name}: labels must lie in [0, {k - 1}], found {int(y.min())}..{int(y.max())}")
    return x.astype(np.float32) / 255.0, y.astype(np.int64)


def load_cifar(name: str, split: str, loader: Callable[[], tuple] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10/100 ``split``; ``loader`` returns ``((x_train, y_train), (x_test, y_test))`` like
    ``keras.datasets.cifar10.load_data`` (the default: downloads about 170 MB once, to ``~/.keras/datasets``)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; received {split!r}")
    if loader is None:
        if name not in ("cifar10", "cifar100"):
            raise ValueError(f"dataset must be cifar10 or cifar100, received {name!r}")
        import keras

        loader = getattr(keras.datasets, name).load_data
    try:
        train, test = loader()
    except Exception as exc:  # no network, a damaged archive: one line
        raise OSError(f"{name}: could not load the dataset via keras.datasets ({type(exc).__name__}: {exc})") from None
    x, y = train if split == "train" else test
    return prepare_cifar(x, y, name)


def load_split(
    dataset: str, split: str, limit: int | None = None, loader: Callable[[], tuple] | None = None, **canvas_args
) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of ``dataset`` (``digits``, ``cifar10`` or ``cifar100``), ``split``; ``limit`` keeps
    the first images (for digits: the canvases of the first ``limit`` digits)."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; received {dataset!r}")
    if dataset == "digits":
        x, y, _ = patch_digit_canvases(split, limit=limit, **canvas_args)
        return x, y
    x, y = load_cifar(dataset, split, loader=loader)
    return (x[:limit], y[:limit]) if limit else (x, y)


@dataclasses.dataclass
class PatchDataConfig(ConfigBase):
    """The data of a patchdrop run, what :func:`load_for` reads (fields of the family's configuration)."""

    dataset: str = "digits"
    """``digits`` (offline canvases, the default), ``cifar10`` or ``cifar100`` (keras.datasets, a download)."""
    canvas_size: int = 32
    """Side of a digit canvas (32 or 64); CIFAR images are 32."""
    digit_size: int = 12
    """Side of the placed digit on the canvas (scikit-learn's 28-pixel digits shrunk): at 12 on a 32-pixel canvas
    it touches 4 to 9 of the 16 patches of 8 x 8 pixels."""
    clutter: int = 6
    """Pieces (6 x 6) of other digits per canvas, placed so that they do not touch the digit's square: random
    patches keep some of them, the digit's patches keep the evidence."""
    train_per_digit: int = 4
    """Canvases per training digit image (1438 images)."""
    test_per_digit: int = 2
    """Canvases per test digit image (359 images)."""
    data_seed: int = 0
    """Seed of the canvases (fixed, so every run sees the same test set)."""
    train_limit: int = 0
    """Use only the first N training images (digits: digit images); 0 = all."""
    test_limit: int = 0
    """Use only the first N test images (digits: digit images); 0 = all."""
    val_fraction: float = 0.0
    """Hold out this share of the training images as the ``val`` split, where choices are made (the keep threshold
    of ``--patch-budget``), never on ``test``; for digits whole digit images go (all their canvases), drawn with
    ``data_seed``. 0 = no validation split: training sees every training image."""

    def validate(self) -> PatchDataConfig:
        super().validate()
        require_choice("dataset", self.dataset, DATASETS)
        for name in ("canvas_size", "digit_size", "train_per_digit", "test_per_digit"):
            require_positive_int(name, getattr(self, name))
        for name in ("clutter", "data_seed", "train_limit", "test_limit"):
            require_positive_int(name, getattr(self, name), allow_zero=True)
        require_finite("val_fraction", self.val_fraction, low=0.0, high=0.5)
        return self


def load_for(config: PatchDataConfig, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``split`` (``train``, ``val`` or ``test``) of the data a patchdrop configuration names (its dataset, limits,
    canvas settings and ``val_fraction``: ``train`` and ``val`` share the training images, :func:`held_out`)."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test; received {split!r}")
    source = "test" if split == "test" else "train"
    limit = (config.test_limit if split == "test" else config.train_limit) or None
    if config.dataset != "digits":
        x, y = load_split(config.dataset, source, limit=limit)
        per = 1
    else:
        per = config.test_per_digit if split == "test" else config.train_per_digit
        canvas = {"canvas_size": config.canvas_size, "digit_size": config.digit_size, "clutter": config.clutter}
        x, y = load_split("digits", source, limit=limit, per_digit=per, seed=config.data_seed, **canvas)
    if split == "test":
        return x, y
    if split == "val" and not config.val_fraction:
        raise ValueError("this run has no validation split (val_fraction = 0)")
    if not config.val_fraction:
        return x, y
    mask = held_out(np.arange(len(x)) // per, config.val_fraction, config.data_seed)
    keep = mask if split == "val" else ~mask
    return x[keep], y[keep]


def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """CIFAR augmentation: a random shift of up to 4 pixels (zero padding) and a mirror half the time."""
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)))
    dy, dx = rng.integers(0, 9, size=(2, n))
    out = np.stack([padded[i, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    mirror = rng.random(n) < 0.5
    out[mirror] = out[mirror, :, ::-1]
    return out
