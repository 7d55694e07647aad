"""The window's own pixels as its descriptor (``--features scratch``): the feature model of the scratch CNN
(:func:`zoomrl.agents.dqn.scratch.build_scratch_qnetwork`), which learns its features end to end with the Q-values.

:class:`PixelCrops` (plain NumPy and Pillow) resizes the requested window to 84x84, scales RGB to [0, 1] and
flattens it (21168 values), so that the environments, the vector env and the replay memory handle it as any
descriptor.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from zoomrl.core.geometry import pixel_window
from zoomrl.vision.features import Request

SIDE = 84
CHANNELS = 3
PIXELS = SIDE * SIDE * CHANNELS


class PixelCrops:
    """The window's pixels at 84x84 (see the module docstring); the contract of a feature model."""

    variant = "scratch"
    weights_name = "none (learnt end to end)"

    def __init__(self) -> None:
        self.calls = 0
        self.images = 0

    @property
    def descriptor_size(self) -> int:
        return PIXELS

    @staticmethod
    def crop(image: np.ndarray, window: Sequence[float]) -> np.ndarray:
        """The window ``(x1, y1, x2, y2)`` of ``image`` resized bilinearly to 84x84x3, float32 in [0, 1]."""
        h, w = image.shape[:2]
        x1, y1, x2, y2 = pixel_window(window, w, h)
        region = Image.fromarray(np.ascontiguousarray(image[y1:y2, x1:x2]))
        return np.asarray(region.resize((SIDE, SIDE), Image.BILINEAR), dtype=np.float32) / 255.0

    def describe(self, requests: Sequence[Request]) -> np.ndarray:
        out = np.empty((len(requests), PIXELS), dtype=np.float32)
        for i, r in enumerate(requests):
            out[i] = self.crop(r.image, r.window).reshape(-1)
        self.calls += 1
        self.images += len(requests)
        return out

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def stats(self) -> dict[str, float]:
        return {"crop_calls": self.calls, "crops": self.images}


__all__ = ["PixelCrops", "PIXELS", "SIDE", "CHANNELS"]
