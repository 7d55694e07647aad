"""Features learnt from scratch by Q-learning (``--features scratch``): a small CNN on the box's pixels, trained end
to end with the Q-values, in place of the frozen VGG-16 descriptor.

* The descriptor is the window's pixels, 84x84 RGB in [0, 1], flattened: :class:`zoomrl.vision.pixels.PixelCrops`
  computes it (the agent does not import ``vision``; :data:`PIXELS` here is the layout the network expects, and a
  test checks that the two agree).
* :func:`build_scratch_qnetwork` is the Q-network the :class:`~zoomrl.agents.dqn.agent.DQNAgent` builds through its
  ``build_network`` hook: the state ``(84*84*3 + history,)`` is split into the image, which goes through three
  convolutions (32 8x8 stride 4, 64 4x4 stride 2, 64 3x3 stride 1, ReLU: the DQN Atari trunk), and the action
  history, which joins the flattened maps before a Dense ``hidden_units`` ReLU layer, dropout and the Q head
  (linear, or dueling). ``keras.layers``/``keras.ops`` only: every backend runs it.
"""

from __future__ import annotations

import keras
from keras import layers

from zoomrl.agents.dqn.network import DuelingCombine

SIDE = 84
CHANNELS = 3
PIXELS = SIDE * SIDE * CHANNELS


def build_scratch_qnetwork(
    state_size: int,
    num_actions: int,
    hidden_units: int = 512,
    dropout: float = 0.2,
    dueling: bool = False,
    name: str = "q_network",
) -> keras.Model:
    """The CNN Q-network of the module docstring, on flat states ``(84*84*3 + history,)``; the ``build_network``
    signature of :class:`~zoomrl.agents.dqn.agent.DQNAgent`."""
    history = state_size - PIXELS
    if history < 0:
        raise ValueError(
            f"a scratch state holds {PIXELS} pixel values plus the action history, received state_size {state_size}"
        )
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


__all__ = ["build_scratch_qnetwork", "PIXELS", "SIDE"]
