"""The glimpse sensor: ``scales`` square patches centred at a location, each twice as wide as the one before,
each reduced to ``size`` x ``size`` pixels, stacked along the channels.

Coordinates: a location ``l = (x, y)`` lies in ``[-1, 1]^2``; ``(-1, -1)`` is the top-left corner of the image and
``(1, 1)`` the bottom-right one, so its pixel position is ``c = (l + 1) / 2 * (W, H)`` (pixel edges, see
:mod:`zoomrl.core.geometry`). Patch ``k`` (0-based) is ``w_k = size * 2**k`` pixels wide; its first column is
``floor(c_x + 0.5) - w_k // 2`` (the same for rows), so it covers ``[x0, x0 + w_k)``. Pixels outside the image
read as 0; locations outside ``[-1, 1]`` are clipped to it. Patch ``k`` is reduced to ``size`` x ``size`` by
averaging its ``2**k`` x ``2**k`` blocks (the resize is an exact box filter, as in the paper's retina). With ``C``
image channels the result is ``(B, size, size, scales * C)``: channels ``k*C .. k*C + C - 1`` hold patch ``k``.

Written with ``keras.ops`` only (runs under TensorFlow, JAX and PyTorch); :func:`glimpse_numpy` is a plain NumPy
version of the same definition, for checks.
"""

from __future__ import annotations

import numpy as np
from keras import ops


def patch_origins(locations, height: int, width: int, patch: int):
    """First column and row ``(x0, y0)`` (int32) of the ``patch``-wide window centred at ``locations``."""
    loc = ops.clip(ops.cast(locations, "float32"), -1.0, 1.0)
    cx = (loc[:, 0] + 1.0) * 0.5 * float(width)
    cy = (loc[:, 1] + 1.0) * 0.5 * float(height)
    x0 = ops.cast(ops.floor(cx + 0.5), "int32") - patch // 2
    y0 = ops.cast(ops.floor(cy + 0.5), "int32") - patch // 2
    return x0, y0


def glimpse_sensor(images, locations, size: int, scales: int):
    """``images (B, H, W, C)``, ``locations (B, 2)`` in [-1, 1] -> glimpses ``(B, size, size, scales * C)``."""
    images = ops.convert_to_tensor(images)
    if len(images.shape) != 4:
        raise ValueError(f"glimpse_sensor expects (B, H, W, C) images, received shape {tuple(images.shape)}")
    h, w, c = int(images.shape[1]), int(images.shape[2]), int(images.shape[3])
    widest = size * 2 ** (scales - 1)
    pad = widest // 2 + 1
    padded = ops.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    hp, wp = h + 2 * pad, w + 2 * pad
    batch = ops.shape(images)[0]
    flat = ops.reshape(padded, (-1, c))
    base = ops.arange(batch, dtype="int32") * (hp * wp)
    out = []
    for k in range(scales):
        pw = size * 2**k
        x0, y0 = patch_origins(locations, h, w, pw)
        x0 = ops.clip(x0 + pad, 0, wp - pw)
        y0 = ops.clip(y0 + pad, 0, hp - pw)
        steps = ops.arange(pw, dtype="int32")
        rows = y0[:, None] + steps[None, :]  # (B, pw)
        cols = x0[:, None] + steps[None, :]
        index = base[:, None, None] + rows[:, :, None] * wp + cols[:, None, :]  # (B, pw, pw)
        patch = ops.take(flat, ops.reshape(index, (-1,)), axis=0)
        f = 2**k
        patch = ops.reshape(patch, (-1, size, f, size, f, c))
        out.append(ops.mean(patch, axis=(2, 4)))
    return ops.concatenate(out, axis=-1)


def glimpse_numpy(images: np.ndarray, locations: np.ndarray, size: int, scales: int) -> np.ndarray:
    """Plain NumPy version of :func:`glimpse_sensor` (slow, for checks)."""
    images = np.asarray(images, dtype=np.float64)
    b, h, w, c = images.shape
    out = np.zeros((b, size, size, scales * c))
    locations = np.clip(np.asarray(locations, dtype=np.float64), -1.0, 1.0)
    for i in range(b):
        cx = (locations[i, 0] + 1) / 2 * w
        cy = (locations[i, 1] + 1) / 2 * h
        for k in range(scales):
            pw = size * 2**k
            x0 = int(np.floor(cx + 0.5)) - pw // 2
            y0 = int(np.floor(cy + 0.5)) - pw // 2
            patch = np.zeros((pw, pw, c))
            for r in range(pw):
                for q in range(pw):
                    y, x = y0 + r, x0 + q
                    if 0 <= y < h and 0 <= x < w:
                        patch[r, q] = images[i, y, x]
            f = 2**k
            out[i, :, :, k * c : (k + 1) * c] = patch.reshape(size, f, size, f, c).mean(axis=(1, 3))
    return out.astype(np.float32)
