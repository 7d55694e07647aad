"""Features learnt from scratch by Q-learning (``--features scratch``): a small CNN on the box's pixels, trained end
to end with the Q-values, in place of the frozen VGG-16 descriptor.

* :class:`PixelCrops` is the "feature model" (plain NumPy and Pillow): the requested window resized to 84x84, RGB
  scaled to [0, 1], flattened (21168 values), so the environments, the vector env and the replay memory handle it
  as any descriptor.
* :func:`build_scratch_qnetwork` is the Q-network the :class:`~zoomrl.agents.dqn.agent.DQNAgent` builds through its
  ``build_network`` hook: the state ``(84*84*3 + history,)`` is split into the image, which goes through three
  convolutions (32 8x8 stride 4, 64 4x4 stride 2, 64 3x3 stride 1, ReLU: the DQN Atari trunk), and the action
  history, which joins the flattened maps before a Dense ``hidden_units`` ReLU layer, dropout and the Q head
  (linear, or dueling). ``keras.layers``/``keras.ops`` only: every backend runs it.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import layers
from PIL import Image

from zoomrl.agents.dqn.network import DuelingCombine
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


def build_scratch_qnetwork(state_size: int, num_actions: int, hidden_units: int = 512, dropout: float = 0.2,
                           dueling: bool = False, name: str = "q_network") -> keras.Model:
    """The CNN Q-network of the module docstring, on flat states ``(84*84*3 + history,)``; the ``build_network``
    signature of :class:`~zoomrl.agents.dqn.agent.DQNAgent`."""
    history = state_size - PIXELS
    if history < 0:
        raise ValueError(f"a scratch state holds {PIXELS} pixel values plus the action history, "
                         f"received state_size {state_size}")
    if num_actions < 2:
        raise ValueError(f"num_actions must be at least 2, received {num_actions}")
    state = keras.Input(shape=(state_size,), name="state")
    pixels = layers.Reshape((SIDE, SIDE, CHANNELS), name="pixels")(state[:, :PIXELS])
    x = layers.Conv2D(32, 8, strides=4, activation="relu", name="conv_1")(pixels)
    x = layers.Conv2D(64, 4, strides=2, activation="relu", name="conv_2")(x)
    x = layers.Conv2D(64, 3, strides=1, activation="relu", name="conv_3")(x)
    x = layers.Flatten(name="flatten")(x)
    if history:
        x = layers.Concatenate(name="with_history")([x, state[:, PIXELS:]])
    x = layers.Dense(hidden_units, activation="relu", name="dense_1")(x)
    x = layers.Dropout(dropout, name="dropout_1")(x)
    if dueling:
        value = layers.Dense(1, name="value")(x)
        advantages = layers.Dense(num_actions, name="advantages")(x)
        q = DuelingCombine(name="q_values")(value, advantages)
    else:
        q = layers.Dense(num_actions, activation="linear", name="q_values")(x)
    return keras.Model(state, q, name=name)


__all__ = ["PixelCrops", "build_scratch_qnetwork", "PIXELS", "SIDE"]
