"""The policy network: a ResNet-8 on the low-resolution image, one sigmoid per patch, trained by REINFORCE.

:class:`PolicyNetwork` is a ``keras.Model`` whose :meth:`compute_loss` is the REINFORCE surrogate: for sampled
actions ``a`` (drawn from the exploration-mixed probabilities ``p' = alpha p + (1 - alpha)(1 - p)``) and their
advantage ``A`` (held constant with ``stop_gradient``), the loss is ``-mean_{b,k}(A_b log pi'(a_bk))`` with
``log pi'(a) = a log p' + (1 - a) log(1 - p')``. ``train_on_batch(x=low-resolution images, y=[a | A | alpha])`` runs one
update; ``y`` is ``(B, P + 2)``: the ``P`` actions, the advantage, then the exploration ``alpha`` the actions were
drawn with (an annealed alpha changes between updates; as an input it needs no new trace). ``y`` of ``(B, P + 1)``
uses the network's fixed ``alpha``. Written with ``keras.ops`` only.
"""

from __future__ import annotations

import keras
from keras import ops

from zoomrl.agents.patchdrop.resnet import cifar_resnet

EPS = 1e-6


def mixed_log_likelihood(probs, actions, alpha):
    """``(B, P)`` log-likelihoods of 0/1 ``actions`` under ``alpha p + (1 - alpha)(1 - p)`` (``alpha`` a number or
    a ``(B, 1)`` column)."""
    p = ops.clip(probs, EPS, 1.0 - EPS)
    p = alpha * p + (1.0 - alpha) * (1.0 - p)
    return actions * ops.log(p) + (1.0 - actions) * ops.log(1.0 - p)


class PolicyNetwork(keras.Model):
    """ResNet-(6 ``blocks`` + 2) from ``(lr, lr, c)`` images to ``patches`` keep-probabilities (see the module)."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        patches: int = 16,
        blocks: int = 1,
        width: int = 16,
        alpha: float = 0.8,
        name: str = "policy",
        **kwargs,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.patches = int(patches)
        self.alpha = float(alpha)
        self.net = cifar_resnet(input_shape, blocks, self.patches, "sigmoid", width, name=name + "_net")
        self(ops.zeros((1, *input_shape)))

    def call(self, x, training=False):
        return self.net(x, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y = ops.cast(y, y_pred.dtype)
        actions = y[:, : self.patches]
        advantage = ops.stop_gradient(y[:, self.patches])
        alpha = y[:, self.patches + 1 :] if y.shape[1] > self.patches + 1 else self.alpha
        log_pi = mixed_log_likelihood(y_pred, actions, alpha)
        loss = -ops.mean(log_pi * advantage[:, None])
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss
