"""Region features from one backbone pass per image (``--features roi`` of the active family): RoIAlign.

VGG-16 runs once on the whole (masked) image up to ``block5_conv3``; any box's descriptor is then cropped from that
map by RoIAlign (He et al., Mask R-CNN 2017, after Fast R-CNN's RoI pooling): the box is split into ``grid x grid``
bins, each bin's value is the mean of ``sampling x sampling`` bilinear samples of the map, with no rounding of the
box to cells. The descriptor is ``grid x grid x 512`` (7x7x512 = 25088 values, the size of the warped crop's
``block5_pool``, so the Q-network and ``descriptor_pool`` take either).

**Why ``block5_conv3``** (stride 16) and not ``block5_pool`` (stride 32) or ``block4_pool``: it is the layer Fast R-CNN
pooled from for VGG-16 (its RoI pooling replaces ``pool5``); it has the last conv block's semantics (the warped crop's
descriptor is that same layer, max-pooled); and at stride 16 a 100-pixel box still spans six cells, where
``block5_pool`` would give three and bilinear sampling would mostly repeat them. ``block4_pool`` has the same stride
but one conv block less.

**Coordinates.** Cell ``(i, j)`` of a stride-``s`` map is centred on input pixel ``((j + 0.5) s, (i + 0.5) s)`` (the
"aligned" convention: a box's map coordinates are ``x / s``, and sampling at map coordinate ``u`` interpolates
between cell indices at ``u - 0.5``). Samples beyond the outermost cell centres take the border cell's value
(boxes stay inside the image, so this only affects the half-cell rim).

**Inhibition of return.** The maps are cached by ``(image, mask state)``: after a trigger the cross changes the mask
state, so the maps are recomputed once, exactly as :class:`~zoomrl.vision.features.Pool45Crops` does.

:func:`roi_align` is plain NumPy and separable (a bin's mean of bilinear samples is ``A_y F A_x^T`` per channel, with
``A`` the mean of the samples' interpolation rows), so one box costs two small matrix products.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from zoomrl.vision.features import FeatureModel, Request, _lookup

GRID = 7
SAMPLING = 2
"""Bilinear samples per bin along each axis (Mask R-CNN's 2x2 = 4 points per bin)."""
STRIDE = 16.0
"""``block5_conv3``'s stride in input pixels (four 2x2 poolings)."""
LAYER = "block5_conv3"
MIN_SIDE = 16
"""The smallest image side the map takes: four 2x2 poolings leave one ``block5_conv3`` cell."""

MapFn = Callable[[np.ndarray], np.ndarray]
"""Preprocessed images ``(1, H, W, 3)`` float32 -> conv maps ``(1, h, w, C)``, NumPy."""


def interpolation_rows(
    start: float, length: float, size: int, grid: int = GRID, sampling: int = SAMPLING
) -> np.ndarray:
    """``(grid, size)``: row ``g`` averages the linear interpolation weights of bin ``g``'s ``sampling`` samples over
    ``size`` cells, for an interval ``[start, start + length)`` in map coordinates (cell ``k`` spans ``[k, k + 1)``,
    centre ``k + 0.5``)."""
    out = np.zeros((grid, size), dtype=np.float64)
    bin_len = length / grid
    for g in range(grid):
        for s in range(sampling):
            u = start + (g + (s + 0.5) / sampling) * bin_len - 0.5  # index coordinate of the sample
            u = min(max(u, 0.0), size - 1.0)  # beyond the outer cell centres: the border cell
            lo = int(np.floor(u))
            hi = min(lo + 1, size - 1)
            frac = u - lo
            out[g, lo] += (1.0 - frac) / sampling
            out[g, hi] += frac / sampling
    return out


def roi_align(
    fmap: np.ndarray, box: Sequence[float], stride: float, grid: int = GRID, sampling: int = SAMPLING
) -> np.ndarray:
    """RoIAlign of ``box`` ``(x1, y1, x2, y2)`` (input-image pixel edges) on ``fmap`` ``(h, w, C)`` of stride
    ``stride``: ``(grid, grid, C)`` float32, each bin the mean of ``sampling x sampling`` bilinear samples (see the
    module docstring for the coordinates)."""
    fmap = np.asarray(fmap)
    if fmap.ndim != 3:
        raise ValueError(f"roi_align: expected a map (h, w, C), received shape {fmap.shape}")
    h, w, c = fmap.shape
    x1, y1, x2, y2 = (float(v) / stride for v in box)
    if not (x2 > x1 and y2 > y1):
        raise ValueError(f"roi_align: expected a box with x2 > x1 and y2 > y1, received {tuple(box)}")
    ay = interpolation_rows(y1, y2 - y1, h, grid, sampling)  # (grid, h)
    ax = interpolation_rows(x1, x2 - x1, w, grid, sampling)  # (grid, w)
    # Only the cells some sample touches: a small box reads a small block of the map, not all of it.
    (r0, r1), (c0, c1) = _support(ay), _support(ax)
    block = np.ascontiguousarray(fmap[r0:r1, c0:c1], dtype=np.float32)
    rows = ay[:, r0:r1].astype(np.float32) @ block.reshape(r1 - r0, -1)  # (grid, cols * C)
    out = np.einsum("gw,hwc->hgc", ax[:, c0:c1].astype(np.float32), rows.reshape(grid, c1 - c0, c))
    return out.astype(np.float32, copy=False)


def _support(weights: np.ndarray) -> tuple[int, int]:
    """The range ``[lo, hi)`` of the columns of ``weights`` that are not all zero."""
    used = np.flatnonzero(np.abs(weights).sum(axis=0) > 0)
    return int(used[0]), int(used[-1]) + 1


class RoiAlignFeatures(FeatureModel):
    """One pass of ``maps`` per (masked) image, any box by :func:`roi_align` (see the module docstring).

    ``maps`` returns the conv map of a preprocessed image; ``stride`` is its stride and ``channels`` its depth.
    Images whose longer side exceeds ``max_side`` are resized down first (boxes are scaled alike), which bounds the
    cost on large photos; images with a side below ``min_side`` are padded on the right and bottom with zeros (the
    mean pixel after preprocessing)."""

    variant = "roi_align"

    def __init__(
        self,
        maps: MapFn,
        fingerprint: str,
        *,
        stride: float = STRIDE,
        channels: int = 512,
        grid: int = GRID,
        sampling: int = SAMPLING,
        max_side: int = 500,
        min_side: int = MIN_SIDE,
        **kwargs,
    ) -> None:
        # The disk cache's file is named by the variant: maps at another resolution must not be read back.
        self.variant = f"roi_align_{LAYER}_side{int(max_side)}"
        super().__init__(maps, fingerprint, **kwargs)  # type: ignore[arg-type]
        self.stride = float(stride)
        self.channels = int(channels)
        self.grid = int(grid)
        self.sampling = int(sampling)
        self.max_side = int(max_side)
        self.min_side = int(min_side)

    @property
    def descriptor_size(self) -> int:
        return self.grid * self.grid * self.channels

    def _map(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        import time

        from zoomrl.vision.backbone import preprocess

        h, w = image.shape[:2]
        factor = min(1.0, self.max_side / max(h, w))
        if factor < 1.0:
            size = (max(1, int(round(w * factor))), max(1, int(round(h * factor))))
            image = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR), dtype=np.uint8)
        x = preprocess(image[None])
        h, w = x.shape[1:3]
        if h < self.min_side or w < self.min_side:
            x = np.pad(x, ((0, 0), (0, max(0, self.min_side - h)), (0, max(0, self.min_side - w)), (0, 0)))
        t0 = time.perf_counter()
        fmap = np.asarray(self.backbone(x))
        self.backbone_seconds += time.perf_counter() - t0
        self.backbone_calls += 1
        self.backbone_images += 1
        if fmap.ndim != 4 or fmap.shape[0] != 1 or fmap.shape[-1] != self.channels:
            raise ValueError(
                f"roi features: the backbone returned shape {fmap.shape}; expected (1, h, w, {self.channels})"
            )
        return fmap[0].astype(np.float32), factor

    def descriptor(self, fmap: np.ndarray, factor: float, window: Sequence[float]) -> np.ndarray:
        """One window ``(x1, y1, x2, y2)`` (original image pixel edges) from the map: ``(descriptor_size,)``."""
        box = tuple(float(v) * factor for v in window)
        return roi_align(fmap, box, self.stride, self.grid, self.sampling).reshape(-1)

    def describe(self, requests: Sequence[Request]) -> np.ndarray:
        out = np.empty((len(requests), self.descriptor_size), dtype=np.float32)
        for i, r in enumerate(requests):
            key = ("roi_maps", r.image_key, r.mask_key)
            maps = _lookup(self, key, single=False)
            if maps is None:
                fmap, factor = self._map(r.image)
                maps = [fmap, np.array([factor], dtype=np.float64)]
                self.cache.put(key, maps)
                if self.disk is not None:
                    self.disk.put(key, maps)
            out[i] = self.descriptor(maps[0], float(maps[1][0]), r.window)
        return out


def conv_map_fn(backbone, layer: str = LAYER) -> MapFn:
    """The map ``layer`` of a :class:`~zoomrl.vision.backbone.Backbone`'s VGG-16, as a NumPy function."""
    import keras

    model = keras.Model(backbone.model.input, backbone.model.get_layer(layer).output, name=f"vgg16_{layer}")
    model.trainable = False

    def maps(batch: np.ndarray) -> np.ndarray:
        return keras.ops.convert_to_numpy(model(batch, training=False))

    return maps


def build_roi_feature_model(
    weights: str,
    *,
    cache_mb: float = 3072,
    cache_dir: str | None = None,
    max_side: int = 500,
    log: Callable[[str], None] = print,
) -> RoiAlignFeatures:
    """VGG-16 with ``weights`` (see :func:`zoomrl.vision.backbone.load_backbone`) to ``block5_conv3``, and RoIAlign
    over it (``weights_name`` set)."""
    from zoomrl.vision.backbone import load_backbone

    backbone = load_backbone(weights, log=log)
    model = RoiAlignFeatures(
        conv_map_fn(backbone), backbone.fingerprint, max_side=max_side, cache_mb=cache_mb, cache_dir=cache_dir, log=log
    )
    model.weights_name = backbone.weights_name  # type: ignore[attr-defined]
    return model


__all__ = [
    "roi_align",
    "interpolation_rows",
    "RoiAlignFeatures",
    "build_roi_feature_model",
    "conv_map_fn",
    "LAYER",
    "STRIDE",
    "GRID",
    "SAMPLING",
]
