"""Whole-image baselines: a plain CNN and an MLP that see the entire canvas at once.

* ``cnn``: Conv 5x5/2 (32) - Conv 5x5/2 (64) - Conv 3x3/2 (64), ReLU, flatten, Dense 256 ReLU, output;
* ``mlp``: flatten, Dense 256 ReLU, Dense 256 ReLU, output (the paper's "FC, 2 layers, 256 hiddens each").

Outputs: class logits (classification, cross-entropy) or a 2-D location in [-1, 1] units (regression, L1 or MSE;
targets ``(B, 3)`` rows ``(x, y, scale)`` as for :class:`zoomrl.agents.ram.network.RamModel`).
"""

from __future__ import annotations

import keras
from keras import layers, ops

WHOLE_IMAGE_KINDS = ("cnn", "mlp")


class WholeImageNet(keras.Model):
    def __init__(
        self,
        kind: str = "cnn",
        task: str = "classify",
        n_outputs: int = 10,
        reg_loss: str = "l1",
        hidden: int = 256,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if kind not in WHOLE_IMAGE_KINDS:
            raise ValueError(f"whole-image baseline must be one of {', '.join(WHOLE_IMAGE_KINDS)}; received {kind!r}")
        self.kind, self.task, self.reg_loss = kind, task, reg_loss
        if kind == "cnn":
            self.body = [
                layers.Conv2D(32, 5, strides=2, padding="same", activation="relu", name="conv1"),
                layers.Conv2D(64, 5, strides=2, padding="same", activation="relu", name="conv2"),
                layers.Conv2D(64, 3, strides=2, padding="same", activation="relu", name="conv3"),
                layers.Flatten(name="flatten"),
                layers.Dense(hidden, activation="relu", name="fc"),
            ]
        else:
            self.body = [
                layers.Flatten(name="flatten"),
                layers.Dense(hidden, activation="relu", name="fc1"),
                layers.Dense(hidden, activation="relu", name="fc2"),
            ]
        self.head = layers.Dense(n_outputs, name="head")

    def call(self, images, training=False):
        x = ops.convert_to_tensor(images)
        if len(x.shape) == 3:
            x = x[..., None]
        for layer in self.body:
            x = layer(x)
        return self.head(x)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if self.task == "classify":
            return ops.mean(
                keras.losses.sparse_categorical_crossentropy(ops.cast(y, "int32"), y_pred, from_logits=True)
            )
        diff = y_pred - ops.cast(y[:, :2], y_pred.dtype)
        per = ops.sum(ops.abs(diff), axis=-1) if self.reg_loss == "l1" else ops.sum(ops.square(diff), axis=-1)
        return ops.mean(per)
