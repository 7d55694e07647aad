"""The Q-network (Bellver et al. 2016, section 3.4): Dense 1024 ReLU, dropout, Dense 1024 ReLU, dropout, then a
linear head of one value per action; optionally dueling heads (Wang et al. 2016) and an auxiliary head that predicts
the IoU of the state's window with its target (a detection score that ranks hits above near misses). Written with
``keras.layers`` and ``keras.ops`` only, so it runs under the TensorFlow, JAX and PyTorch backends.
"""

from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="zoomrl")
class DuelingCombine(layers.Layer):
    """``Q = V + A - mean(A)``: the value stream ``(B, 1)`` and the advantage stream ``(B, A)`` into Q-values."""

    def call(self, value, advantages):
        return value + advantages - ops.mean(advantages, axis=-1, keepdims=True)


def build_qnetwork(
    state_size: int,
    num_actions: int,
    hidden_units: int = 1024,
    dropout: float = 0.2,
    dueling: bool = False,
    name: str = "q_network",
    iou_head: bool = False,
    weight_decay: float = 0.0,
) -> keras.Model:
    """A Functional Q-network from ``(state_size,)`` states to ``(num_actions,)`` action values (not compiled:
    the agent's learner owns the optimizer, so the network's weights file holds the network alone).

    With ``iou_head`` the model has two outputs, ``[q_values (B, num_actions), iou (B, 1)]``: the second is a
    sigmoid unit on the last hidden layer (layer ``iou``), trained to predict the window's IoU. ``weight_decay``
    puts an L2 regulariser on every Dense kernel (the model's ``losses``, which the agent adds to its loss)."""
    if state_size < 1:
        raise ValueError(f"state_size must be positive, received {state_size}")
    if num_actions < 2:
        raise ValueError(f"num_actions must be at least 2, received {num_actions}")
    state = keras.Input(shape=(state_size,), name="state")
    reg = keras.regularizers.L2(weight_decay) if weight_decay > 0 else None

    def dense(units: int, **kw) -> layers.Dense:
        return layers.Dense(units, kernel_regularizer=reg, **kw)

    x = dense(hidden_units, activation="relu", name="dense_1")(state)
    x = layers.Dropout(dropout, name="dropout_1")(x)
    x = dense(hidden_units, activation="relu", name="dense_2")(x)
    x = layers.Dropout(dropout, name="dropout_2")(x)
    if dueling:
        value = dense(1, name="value")(x)
        advantages = dense(num_actions, name="advantages")(x)
        q = DuelingCombine(name="q_values")(value, advantages)
    else:
        q = dense(num_actions, activation="linear", name="q_values")(x)
    if iou_head:
        iou = dense(1, activation="sigmoid", name="iou")(x)
        return keras.Model(state, [q, iou], name=name)
    return keras.Model(state, q, name=name)
