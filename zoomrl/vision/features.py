"""Region descriptors: the two feature models of the paper, with a bounded cache.

Both models map a request (an image with its painted masks, and a window ``(x1, y1, x2, y2)`` in pixel edges)
to a 7x7x512 = 25088-value descriptor. They differ in one place only, :meth:`FeatureModel._compute`:

* **Image Zooms**: crop the window from the (masked) image, resize to 224x224, VGG-16 to ``block5_pool``.
* **Pool45 Crops**: VGG-16 once on the whole (masked) image; the window is mapped onto ``block4_pool``
  (stride 16) when its longer side is below ``pool4_threshold`` (224) pixels, else onto ``block5_pool``
  (stride 32), and max-pooled into 7x7 bins (:func:`roi_max_pool`).

Descriptors are cached by ``(image, mask state, window)`` in memory (bounded, least recently used first out)
and, optionally, in an HDF5 file that later runs reuse; the file records the variant, the backbone's weight
fingerprint and the input size it was built with and is discarded when they differ.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from zoomrl.core.cache import LRUCache
from zoomrl.core.geometry import pixel_window
from zoomrl.core.io import DiskFullError
from zoomrl.vision.cache import DiskCache

INPUT_SIZE = 224
GRID = 7
CHANNELS = 512
DESCRIPTOR_SIZE = GRID * GRID * CHANNELS  # 25088
MIN_SIDE = 32
"""The smallest image side VGG-16 takes: five 2x2 poolings leave one ``block5_pool`` cell."""

BackboneFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""Preprocessed images (N, H, W, 3) float32 -> (block4_pool, block5_pool) maps, NumPy."""


class Request(NamedTuple):
    """One descriptor to compute.

    ``image`` is the (masked) RGB uint8 image ``(H, W, 3)``; ``image_key`` names the image and ``mask_key``
    its painted boxes (hashable, e.g. a tuple of integer boxes) so that equal keys mean equal pixels: the data
    sets give :attr:`zoomrl.data.voc.VocImage.key`, a digest of the file's content, never a folder or file name.
    ``window`` is ``(x1, y1, x2, y2)`` in pixel edges.
    """

    image_key: str
    mask_key: Hashable
    image: np.ndarray
    window: tuple[float, float, float, float]


def roi_max_pool(
    fmap: np.ndarray, box: tuple[float, float, float, float], stride: float, grid: int = GRID
) -> np.ndarray:
    """Max-pool the part of ``fmap`` under ``box`` into ``grid x grid`` bins, all channels at once.

    ``fmap`` is ``(h, w, C)``; ``box`` is ``(x1, y1, x2, y2)`` in input-image pixel edges and ``stride`` the map's
    stride in pixels. The box is mapped to map coordinates, split into ``grid`` equal intervals per axis and
    each bin takes the cells from ``floor(start)`` to ``ceil(end)`` (at least one, clamped to the map), so small
    boxes repeat cells instead of leaving empty bins. Returns ``(grid, grid, C)``.
    """
    h, w, _ = fmap.shape
    x1, y1, x2, y2 = (float(v) / stride for v in box)
    xs = np.linspace(x1, x2, grid + 1)
    ys = np.linspace(y1, y2, grid + 1)

    def spans(edges: np.ndarray, size: int) -> list[tuple[int, int]]:
        out = []
        for a, b in zip(edges[:-1], edges[1:]):
            lo = min(max(int(math.floor(a)), 0), size - 1)
            hi = min(max(int(math.ceil(b)), lo + 1), size)
            out.append((lo, hi))
        return out

    out = np.empty((grid, grid, fmap.shape[2]), dtype=fmap.dtype)
    for i, (r0, r1) in enumerate(spans(ys, h)):
        rows = fmap[r0:r1]
        for j, (c0, c1) in enumerate(spans(xs, w)):
            out[i, j] = rows[:, c0:c1].max(axis=(0, 1))
    return out


class FeatureModel:
    """Computes descriptors for batches of requests, through the caches. Subclasses define ``_compute``."""

    variant = "base"

    def __init__(
        self,
        backbone: BackboneFn,
        fingerprint: str,
        batch_size: int = 16,
        cache_mb: float = 2048,
        cache_dir: str | os.PathLike | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.backbone = backbone
        self.fingerprint = fingerprint
        self.batch_size = max(1, int(batch_size))
        self.cache = LRUCache(int(cache_mb * 2**20))
        self.disk: DiskCache | None = None
        if cache_dir is not None:
            meta = {"variant": self.variant, "weights": fingerprint, "input_size": str(INPUT_SIZE)}
            try:
                self.disk = DiskCache(Path(cache_dir) / f"{self.variant}_{fingerprint}.h5", meta, log)
            except DiskFullError as exc:
                log(f"{exc}; running with the memory cache only")
        self.backbone_calls = 0
        self.backbone_images = 0
        self.backbone_seconds = 0.0

    @property
    def descriptor_size(self) -> int:
        return DESCRIPTOR_SIZE

    def describe(self, requests: Sequence[Request]) -> np.ndarray:
        """Descriptors ``(len(requests), 25088)`` float32 for ``requests``, in order."""
        out = np.empty((len(requests), DESCRIPTOR_SIZE), dtype=np.float32)
        if requests:
            self._compute(requests, out)
        return out

    def _run_backbone(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import time

        t0 = time.perf_counter()
        p4, p5 = self.backbone(batch)
        self.backbone_seconds += time.perf_counter() - t0
        self.backbone_calls += 1
        self.backbone_images += len(batch)
        return p4, p5

    def _compute(self, requests: Sequence[Request], out: np.ndarray) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        if self.disk is not None:
            self.disk.flush()

    def close(self) -> None:
        if self.disk is not None:
            self.disk.close()

    def stats(self) -> dict[str, float]:
        return {
            "memory_hits": self.cache.hits,
            "memory_misses": self.cache.misses,
            "disk_hits": self.disk.hits if self.disk else 0,
            "disk_dropped_entries": self.disk.dropped if self.disk else 0,
            "backbone_calls": self.backbone_calls,
            "backbone_images": self.backbone_images,
            "backbone_seconds": round(self.backbone_seconds, 3),
            "cached_items": len(self.cache),
        }


def _lookup(model: FeatureModel, key: Hashable, single: bool):
    """Memory first, then disk (promoting a disk hit to memory). ``single``: the value is one array."""
    value = model.cache.get(key)
    if value is not None:
        return value
    if model.disk is not None:
        arrays = model.disk.get(key)
        if arrays is not None:
            value = arrays[0] if single else arrays
            model.cache.put(key, value)
            return value
    return None


class ImageZooms(FeatureModel):
    """VGG-16 on every visited region: crop, resize to 224x224, ``block5_pool`` flattened."""

    variant = "image_zooms"

    @staticmethod
    def crop(image: np.ndarray, window: tuple[float, float, float, float]) -> np.ndarray:
        """The window ``(x1, y1, x2, y2)`` (pixel edges) of ``image``, resized to 224x224 bilinearly, uint8."""
        h, w = image.shape[:2]
        x1, y1, x2, y2 = pixel_window(window, w, h)
        region = Image.fromarray(image[y1:y2, x1:x2])
        return np.asarray(region.resize((INPUT_SIZE, INPUT_SIZE), Image.BILINEAR), dtype=np.uint8)

    def _compute(self, requests: Sequence[Request], out: np.ndarray) -> None:
        from zoomrl.vision.backbone import preprocess

        missing: dict[Hashable, list[int]] = {}
        for i, r in enumerate(requests):
            h, w = r.image.shape[:2]
            key = (r.image_key, r.mask_key, pixel_window(r.window, w, h))
            hit = _lookup(self, key, single=True)
            if hit is not None:
                out[i] = hit
                continue
            missing.setdefault(key, []).append(i)
        keys = list(missing)
        for start in range(0, len(keys), self.batch_size):
            chunk = keys[start : start + self.batch_size]
            crops = np.stack([self.crop(requests[missing[k][0]].image, requests[missing[k][0]].window) for k in chunk])
            _, p5 = self._run_backbone(preprocess(crops))
            flat = p5.reshape(len(chunk), -1).astype(np.float32)
            for k, d in zip(chunk, flat):
                d = d.copy()
                self.cache.put(k, d)
                if self.disk is not None:
                    self.disk.put(k, [d])
                for i in missing[k]:
                    out[i] = d


class Pool45Crops(FeatureModel):
    """VGG-16 once per (masked) image; windows cropped from ``block4_pool`` or ``block5_pool`` and max-pooled.

    Images whose longer side exceeds ``max_side`` are resized down first (windows are scaled alike), which bounds
    the cost on large photos. Images with a side below :data:`MIN_SIDE` (32 px, where ``block5_pool`` would be
    empty) are padded on the right and bottom with the mean pixel, which is zero after preprocessing, as the
    convolutions' own padding; window coordinates are unchanged.
    """

    variant = "pool45_crops"

    def __init__(self, *args, pool4_threshold: float = 224.0, max_side: int = 500, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pool4_threshold = float(pool4_threshold)
        self.max_side = int(max_side)

    def _maps(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        from zoomrl.vision.backbone import preprocess

        h, w = image.shape[:2]
        factor = min(1.0, self.max_side / max(h, w))
        if factor < 1.0:
            size = (max(1, int(round(w * factor))), max(1, int(round(h * factor))))
            image = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR), dtype=np.uint8)
        x = preprocess(image[None])
        h, w = x.shape[1:3]
        if h < MIN_SIDE or w < MIN_SIDE:
            x = np.pad(x, ((0, 0), (0, max(0, MIN_SIDE - h)), (0, max(0, MIN_SIDE - w)), (0, 0)))
        p4, p5 = self._run_backbone(x)
        return p4[0].astype(np.float32), p5[0].astype(np.float32), factor

    def descriptor(self, p4: np.ndarray, p5: np.ndarray, factor: float, window) -> np.ndarray:
        """Pool one window ``(x1, y1, x2, y2)`` (original image pixel edges) from the maps: ``(25088,)``."""
        box = tuple(float(v) * factor for v in window)
        longer = max(box[2] - box[0], box[3] - box[1])
        if longer < self.pool4_threshold:
            return roi_max_pool(p4, box, 16.0).reshape(-1)
        return roi_max_pool(p5, box, 32.0).reshape(-1)

    def _compute(self, requests: Sequence[Request], out: np.ndarray) -> None:
        for i, r in enumerate(requests):
            key = ("maps", r.image_key, r.mask_key)
            maps = _lookup(self, key, single=False)
            if maps is None:
                p4, p5, factor = self._maps(r.image)
                maps = [p4, p5, np.array([factor], dtype=np.float64)]
                self.cache.put(key, maps)
                if self.disk is not None:
                    self.disk.put(key, maps)
            out[i] = self.descriptor(maps[0], maps[1], float(maps[2][0]), r.window)


def make_feature_model(variant: str, backbone: BackboneFn, fingerprint: str, **kwargs) -> FeatureModel:
    """``image_zooms`` or ``pool45_crops`` over ``backbone``."""
    models = {"image_zooms": ImageZooms, "pool45_crops": Pool45Crops}
    if variant not in models:
        raise ValueError(f"unknown feature model '{variant}'; expected one of {sorted(models)}")
    return models[variant](backbone, fingerprint, **kwargs)


def build_feature_model(
    variant: str,
    weights: str,
    *,
    backbone_batch: int = 16,
    cache_mb: float = 3072,
    cache_dir: str | None = None,
    pool45_max_side: int = 500,
    log: Callable[[str], None] = print,
) -> FeatureModel:
    """The VGG-16 backbone with ``weights`` and the feature model ``variant`` over it (``weights_name`` set)."""
    from zoomrl.vision.backbone import load_backbone

    backbone = load_backbone(weights, log=log)
    extra = {"max_side": pool45_max_side} if variant == "pool45_crops" else {}
    model = make_feature_model(
        variant,
        backbone,
        backbone.fingerprint,
        batch_size=backbone_batch,
        cache_mb=cache_mb,
        cache_dir=cache_dir,
        log=log,
        **extra,
    )
    model.weights_name = backbone.weights_name  # type: ignore[attr-defined]
    return model
