"""CIFAR-style ResNets (He et al. 2016, section 4.2), built from Keras layers, no pretrained download.

A 3x3 convolution with ``width`` filters, then 3 stages of ``n`` basic blocks (two 3x3 convolutions each) with
``width``, ``2 width``, ``4 width`` filters, the last two stages starting with stride 2, then global average pooling
and a dense head: ``6n + 2`` weighted layers. ``n = 5`` is ResNet-32 (31 convolutions + 1 dense, about 0.46M
parameters with 16/32/64 filters: the paper's HR and LR classifiers); ``n = 1`` is ResNet-8 (the policy).
Shortcuts across a change of size are parameter-free ("option A"): subsample by 2 and pad the channels with zeros,
so the only convolutions are the ``1 + 6n`` 3x3 ones. BatchNorm after every convolution (PyTorch's momentum 0.1 and
epsilon 1e-5); convolutions without bias, He-normal initialised.

(The public PatchDrop code calls a ResNet-34 layout "ResNet-32"; this one is the paper's.)
"""

from __future__ import annotations

import keras
from keras import layers, ops


class ZeroPadShortcut(layers.Layer):
    """Option-A shortcut: take every ``stride``-th pixel and append zero channels up to ``filters``."""

    def __init__(self, filters: int, stride: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.stride = int(stride)

    def call(self, x):
        x = x[:, :: self.stride, :: self.stride, :]
        extra = self.filters - x.shape[-1]
        if extra > 0:
            x = ops.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])
        return x

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        h = None if h is None else (h + self.stride - 1) // self.stride
        w = None if w is None else (w + self.stride - 1) // self.stride
        return (b, h, w, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "stride": self.stride}


def _conv_bn(x, filters: int, stride: int, name: str, relu: bool = True):
    x = layers.Conv2D(
        filters, 3, strides=stride, padding="same", use_bias=False, kernel_initializer="he_normal", name=name + "_conv"
    )(x)
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name + "_bn")(x)
    return layers.Activation("relu", name=name + "_relu")(x) if relu else x


def basic_block(x, filters: int, stride: int, name: str):
    """Two 3x3 convolutions with BatchNorm; identity shortcut, or option A when the size changes."""
    y = _conv_bn(x, filters, stride, name + "_a")
    y = _conv_bn(y, filters, 1, name + "_b", relu=False)
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = ZeroPadShortcut(filters, stride, name=name + "_shortcut")(x)
    y = layers.Add(name=name + "_add")([y, shortcut])
    return layers.Activation("relu", name=name + "_out")(y)


def cifar_resnet(
    input_shape: tuple[int, int, int],
    blocks: int,
    outputs: int,
    activation: str = "softmax",
    width: int = 16,
    name: str = "resnet",
) -> keras.Model:
    """A Functional CIFAR ResNet-(6 ``blocks`` + 2) from ``input_shape`` images to ``outputs`` units."""
    if blocks < 1 or outputs < 1 or width < 1:
        raise ValueError(f"blocks, outputs and width must be positive, received {blocks}, {outputs}, {width}")
    inputs = keras.Input(shape=tuple(input_shape), name=name + "_input")
    x = _conv_bn(inputs, width, 1, name + "_stem")
    for stage in range(3):
        for b in range(blocks):
            stride = 2 if stage > 0 and b == 0 else 1
            x = basic_block(x, width * 2**stage, stride, f"{name}_s{stage + 1}b{b + 1}")
    x = layers.GlobalAveragePooling2D(name=name + "_pool")(x)
    out = layers.Dense(outputs, activation=activation, name=name + "_head")(x)
    return keras.Model(inputs, out, name=name)


def depth(blocks: int) -> int:
    """Weighted layers of :func:`cifar_resnet`: ``6 blocks + 2`` (5 -> 32, 1 -> 8)."""
    return 6 * blocks + 2
