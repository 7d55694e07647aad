"""The Q-network (paper section 3.4): Dense 1024 ReLU, dropout, Dense 1024 ReLU, dropout, Dense 6 linear.

Written with ``keras.ops`` only, so it runs under the TensorFlow, JAX and PyTorch backends.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from zoomrl.core.geometry import NUM_ACTIONS


def taken_action_mse(y_true, y_pred):
    """Squared error on the taken action only.

    ``y_true`` is ``(B, 2)``: column 0 the action index, column 1 the target value; ``y_pred`` the ``(B, 6)``
    Q-values. Other actions get no gradient at all (the 2016 code regressed all six outputs towards values
    predicted without dropout, which pulled the untaken ones towards noise).
    """
    actions = ops.cast(y_true[:, 0], "int32")
    targets = y_true[:, 1]
    mask = ops.one_hot(actions, NUM_ACTIONS, dtype=y_pred.dtype)
    q_taken = ops.sum(y_pred * mask, axis=-1)
    return ops.square(q_taken - ops.cast(targets, y_pred.dtype))


def build_qnetwork(state_size: int, hidden_units: int = 1024, dropout: float = 0.2, learning_rate: float = 1e-6,
                   name: str = "q_network") -> keras.Model:
    """A compiled Functional Q-network from ``(state_size,)`` states to ``(6,)`` action values."""
    if state_size < 1:
        raise ValueError(f"state_size must be positive, received {state_size}")
    state = keras.Input(shape=(state_size,), name="state")
    x = layers.Dense(hidden_units, activation="relu", name="dense_1")(state)
    x = layers.Dropout(dropout, name="dropout_1")(x)
    x = layers.Dense(hidden_units, activation="relu", name="dense_2")(x)
    x = layers.Dropout(dropout, name="dropout_2")(x)
    q = layers.Dense(NUM_ACTIONS, activation="linear", name="q_values")(x)
    model = keras.Model(state, q, name=name)
    # XLA makes an update of the 25112 x 1024 network about 2.8x faster on a CPU under TensorFlow (0.34 -> 0.12 s
    # for a minibatch of 32, measured with scripts/benchmark.py's machine); JAX compiles anyway. PyTorch keeps
    # Keras's default, as torch.compile does not pay off for one small step.
    jit = True if keras.backend.backend() in ("tensorflow", "jax") else "auto"
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=taken_action_mse,
                  jit_compile=jit)
    return model
