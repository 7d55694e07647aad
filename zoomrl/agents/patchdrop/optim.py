"""PatchDrop's optimizers, with ``weight_decay`` as the paper's code means it.

``weight_decay`` is an L2 penalty coupled to the gradient, as PyTorch's ``SGD(weight_decay=...)`` and
``Adam(weight_decay=...)`` apply it (the public PatchDrop code trains its classifiers with SGD, momentum 0.9 and
weight decay 5e-4): each trainable weight's gradient becomes ``g + weight_decay * w`` before the optimizer's own
rule (SGD's momentum, Adam's moments). That is the gradient of ``loss + weight_decay / 2 * |w|^2``, every trainable
weight included (BatchNorm's scales and offsets too, as PyTorch's ``net.parameters()``). Keras's own
``weight_decay`` argument is decoupled decay instead (``w -= lr * weight_decay * w`` outside the optimizer's rule,
AdamW's form): with Adam it decays weights far less than the penalty does, so it is not used here.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

OPTIMIZERS = ("sgd", "adam")


class _CoupledL2:
    """Mixin: add ``l2 * w`` to each gradient, then apply the base optimizer's rule."""

    l2: float = 0.0

    def apply(self, grads: list[Any], trainable_variables: list[Any] | None = None) -> Any:
        # Every backend's train step ends here (TensorFlow through apply_gradients, JAX through stateless_apply,
        # which passes no variables and maps the optimizer's own list to their current values).
        variables = self._trainable_variables if trainable_variables is None else list(trainable_variables)
        grads = [
            g if g is None else ops.add(g, ops.multiply(ops.cast(self.l2, g.dtype), v))
            for g, v in zip(grads, variables)
        ]
        return super().apply(grads, trainable_variables)


class SGDL2(_CoupledL2, keras.optimizers.SGD):
    """SGD with the coupled L2 penalty ``l2``."""


class AdamL2(_CoupledL2, keras.optimizers.Adam):
    """Adam with the coupled L2 penalty ``l2``."""


def make_optimizer(kind: str, learning_rate: float, weight_decay: float = 0.0) -> keras.optimizers.Optimizer:
    """``sgd`` (momentum 0.9) or ``adam`` at ``learning_rate``; ``weight_decay`` > 0 adds the coupled L2 penalty
    (see the module docstring)."""
    if kind not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; received {kind!r}")
    kw = {"momentum": 0.9} if kind == "sgd" else {}
    if not weight_decay:
        return (keras.optimizers.SGD if kind == "sgd" else keras.optimizers.Adam)(learning_rate=learning_rate, **kw)
    opt = (SGDL2 if kind == "sgd" else AdamL2)(learning_rate=learning_rate, **kw)
    opt.l2 = float(weight_decay)
    return opt
