"""A compact region descriptor (issue 17, overfitting): the 7x7x512 VGG-16 pool5 descriptor average-pooled into
``g x g`` cells of 512 channels, so the Q-network's first Dense layer has ``(7 / g) ** 2`` times fewer weights.

Both feature models give a descriptor laid out as ``(7, 7, 512)`` row-major, channels last (a pool5 map, or a
window's RoI max-pool of a pool4/pool5 map). :func:`pool_descriptors` is plain NumPy; :class:`PooledFeatures`
wraps any feature model with it, leaving its caches, statistics and life cycle to the wrapped model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

CELLS = 7
CHANNELS = 512


def pool_bins(grid: int, cells: int = CELLS) -> list[tuple[int, int]]:
    """The cell ranges ``[lo, hi)`` of ``grid`` bins over ``cells`` cells: equal real intervals, each bin taking
    the cells from ``floor(start)`` to ``ceil(end)``, so bins overlap by a cell where ``grid`` does not divide
    ``cells`` (2 over 7: cells 0-3 and 3-6)."""
    edges = np.linspace(0.0, cells, grid + 1)
    return [(int(math.floor(a + 1e-9)), int(math.ceil(b - 1e-9))) for a, b in zip(edges[:-1], edges[1:])]


def pool_descriptors(descriptors: np.ndarray, grid: int, cells: int = CELLS, channels: int = CHANNELS) -> np.ndarray:
    """``(N, cells * cells * channels)`` descriptors, read as ``(N, cells, cells, channels)``, average-pooled into
    ``(N, grid * grid * channels)`` (same layout). ``grid == cells`` returns the input unchanged."""
    d = np.asarray(descriptors, dtype=np.float32)
    if grid == cells:
        return d
    if d.ndim != 2 or d.shape[1] != cells * cells * channels:
        raise ValueError(
            f"expected descriptors of {cells}x{cells}x{channels} = {cells * cells * channels} values, "
            f"received shape {d.shape}"
        )
    maps = d.reshape(len(d), cells, cells, channels)
    bins = pool_bins(grid, cells)
    out = np.empty((len(d), grid, grid, channels), dtype=np.float32)
    for i, (r0, r1) in enumerate(bins):
        for j, (c0, c1) in enumerate(bins):
            out[:, i, j] = maps[:, r0:r1, c0:c1].mean(axis=(1, 2))
    return out.reshape(len(d), -1)


class PooledFeatures:
    """A feature model whose descriptors are :func:`pool_descriptors` of ``inner``'s (everything else, caches
    included, is ``inner``'s: the cache keeps the full descriptors, so runs with other grids share it)."""

    def __init__(self, inner: Any, grid: int, cells: int = CELLS, channels: int = CHANNELS) -> None:
        if inner.descriptor_size != cells * cells * channels:
            raise ValueError(
                f"descriptor_pool needs {cells}x{cells}x{channels} descriptors; this feature model gives "
                f"{inner.descriptor_size} values"
            )
        self.inner = inner
        self.grid = int(grid)
        self.cells = cells
        self.channels = channels

    @property
    def descriptor_size(self) -> int:
        return self.grid * self.grid * self.channels

    def describe(self, requests: Sequence[Any]) -> np.ndarray:
        return pool_descriptors(self.inner.describe(requests), self.grid, self.cells, self.channels)

    def __getattr__(self, name: str) -> Any:
        # Everything but the descriptor (flush, close, stats, weights_name, ...) is the wrapped model's.
        return getattr(self.inner, name)


def pooled(features: Any, grid: int) -> Any:
    """``features`` itself for ``grid == 7`` (the paper's descriptor), else wrapped in :class:`PooledFeatures`."""
    return features if grid == CELLS else PooledFeatures(features, grid)
