"""Glimpses described by the frozen backbone (issue 19): with ``glimpse_input: pool4`` every photo's VGG-16
``block4_pool`` map (``image_size / 16`` cells a side, 512 channels) is computed once per run, and RAM's glimpse
sensor and the whole-image baselines read the map instead of the pixels (``Split.features``). A glimpse of
``glimpse_size`` cells at scale ``k`` then covers ``glimpse_size * 2**k * 16`` pixels, the field its cells describe.
The landmarks, the scores and the pictures stay in pixels: the map covers the same field as the letterboxed photo.

Training flips are the maps of the flipped photos (a VGG map is not mirror-symmetric, so the map is not flipped),
both computed once; :meth:`TaskData.train_epoch` draws the epoch's order and flips and hands them to
:meth:`BackboneTaskData._epoch_inputs`. Shifts are not offered (a map per shift would be needed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from zoomrl.data.splits import BACKBONE_STRIDE, Split, TaskData, TaskDataConfig

BATCH = 16
"""Photos per backbone call."""


class BackboneTaskData(TaskData):
    """:class:`TaskData` whose VOC splits carry the backbone's pool4 maps as ``features``."""

    def __init__(self, cfg: TaskDataConfig, log: Callable[[str], None] = print) -> None:
        super().__init__(cfg)
        self.log = log
        self._backbone: Any = None
        self._train_maps: tuple[np.ndarray, np.ndarray] | None = None

    def image_shape(self) -> tuple[int, int, int]:
        side = self.cfg.image_size // BACKBONE_STRIDE
        return (side, side, 512)

    def maps(self, images: np.ndarray) -> np.ndarray:
        """``(N, S, S, 3)`` photos in [0, 1] -> their ``block4_pool`` maps ``(N, S/16, S/16, 512)`` float32, times
        ``feature_scale``."""
        from zoomrl.vision.backbone import load_backbone, preprocess

        if self._backbone is None:
            self._backbone = load_backbone(self.cfg.weights, log=self.log)
        x = preprocess(np.asarray(images, np.float32) * 255.0)
        maps = np.concatenate([self._backbone(x[i : i + BATCH])[0] for i in range(0, len(x), BATCH)])
        return (maps * self.cfg.feature_scale).astype(np.float32)

    def _trainval_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """The maps of the trainval photos and of the same photos flipped left-right (the latter only with flips)."""
        if self._train_maps is None:
            s = self._voc_trainval()
            plain = self.maps(s.images)
            flipped = self.maps(s.images[:, :, ::-1]) if self.cfg.augment_flip else plain
            self._train_maps = (plain, flipped)
        return self._train_maps

    def _epoch_inputs(self, split: Split, order: np.ndarray, flips: np.ndarray) -> Split:
        """Each image's map, or its flipped photo's map where the epoch flipped it (no shifts: the config refuses)."""
        plain, flipped = self._trainval_maps()
        features = np.where(flips[:, None, None, None], flipped[order], plain[order])
        return dataclasses.replace(split, features=features)

    def test(self) -> Split:
        s = super().test()
        return dataclasses.replace(s, features=self.maps(s.images))


def task_data(cfg: TaskDataConfig, log: Callable[[str], None] = print) -> TaskData:
    """The data of a run: its splits with the backbone's maps (``glimpse_input: pool4``), or the pixels alone."""
    return BackboneTaskData(cfg, log) if cfg.glimpse_input == "pool4" else TaskData(cfg)


def cell_pixels(cfg: TaskDataConfig) -> int:
    """Pixels per unit of ``glimpse_size``: 16 on pool4 maps, 1 on pixels (the pictures draw glimpses in pixels)."""
    return BACKBONE_STRIDE if cfg.glimpse_input == "pool4" else 1
