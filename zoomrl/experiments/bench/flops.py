"""Floating-point operations of a network's forward pass, counted analytically from its layers' shapes.

A multiply-add counts as two operations (the convention of a matmul's ``2 * m * n * k``). Only the layers that hold
the arithmetic are counted: ``Dense``, ``Conv2D``, and the ``LSTMCell``/``GRUCell`` of a recurrent core; bias adds,
activations, pooling and normalisation are left out (on these networks they are under a few per cent, and they are
memory-bound, not compute-bound, so a roofline of matmuls would not describe them anyway).

The shapes are read by running the forward pass once with every counted layer's ``call`` wrapped
(:func:`record_calls`): a layer called several times (the glimpse network at every glimpse) is counted every time,
with the batch it saw. The counting itself (:func:`dense_flops`, :func:`conv2d_flops`, :func:`lstm_flops`,
:func:`gru_flops`) is plain arithmetic, tested against hand computations.

An update (forward, then the gradients with respect to the activations and to the weights) costs about three
forward passes: :data:`BACKWARD_FACTOR`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

BACKWARD_FACTOR = 3
"""A training step's FLOPs over its forward pass: the backward pass does two matmuls (one for the activations'
gradient, one for the weights') per forward matmul."""


def dense_flops(rows: int, n_in: int, n_out: int) -> int:
    """``rows`` vectors of ``n_in`` values through an ``n_in x n_out`` kernel."""
    return 2 * rows * n_in * n_out


def conv2d_flops(batch: int, out_h: int, out_w: int, k_h: int, k_w: int, c_in: int, c_out: int, groups: int = 1) -> int:
    """One output value is a dot product over ``k_h * k_w * c_in / groups`` inputs; there are
    ``batch * out_h * out_w * c_out`` of them."""
    return 2 * batch * out_h * out_w * c_out * k_h * k_w * (c_in // groups)


def lstm_flops(batch: int, n_in: int, units: int) -> int:
    """One step of an LSTM cell: the input and the previous output through the four gates' kernels."""
    return 2 * batch * (n_in + units) * 4 * units


def gru_flops(batch: int, n_in: int, units: int) -> int:
    """One step of a GRU cell: three gates."""
    return 2 * batch * (n_in + units) * 3 * units


@dataclass(frozen=True)
class LayerCall:
    """One counted call: the layer's name and kind, its input and output shapes, the FLOPs they imply, and
    ``kernel``: the arithmetic of the call as one operation at its own shapes, what
    :func:`~zoomrl.experiments.bench.measure.kernel_seconds` times. ``("matmul", rows, n_in, n_out)`` for a Dense
    layer, and for a recurrent cell its gates' kernel over the input and the previous output (``n_in + units`` by
    ``4 * units`` for an LSTM, ``3 * units`` for a GRU); ``("conv", input_shape, (k_h, k_w, c_in / groups, c_out),
    strides, padding, dilation)`` for a convolution."""

    name: str
    kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    flops: int
    kernel: tuple[Any, ...] = ()


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in x.shape)


def _rows(shape: tuple[int, ...]) -> int:
    rows = 1
    for d in shape[:-1]:
        rows *= d
    return rows


def _count(layer: Any, kind: str, args: tuple, out: Any) -> LayerCall:
    x = args[0]
    shape_in = _shape(x)
    main_out = out[0] if isinstance(out, (tuple, list)) else out
    shape_out = _shape(main_out)
    kernel: tuple[Any, ...]
    if kind == "Dense":
        flops = dense_flops(_rows(shape_in), shape_in[-1], int(layer.units))
        kernel = ("matmul", _rows(shape_in), shape_in[-1], int(layer.units))
    elif kind == "Conv2D":
        if layer.data_format != "channels_last":
            raise ValueError(f"{layer.name}: only channels_last convolutions are counted; received {layer.data_format}")
        k_h, k_w = (int(k) for k in layer.kernel_size)
        b, out_h, out_w, c_out = shape_out
        groups = int(getattr(layer, "groups", 1))
        flops = conv2d_flops(b, out_h, out_w, k_h, k_w, shape_in[-1], c_out, groups)
        kernel = (
            "conv",
            shape_in,
            (k_h, k_w, shape_in[-1] // groups, c_out),
            tuple(int(v) for v in layer.strides),
            str(layer.padding),
            tuple(int(v) for v in layer.dilation_rate),
        )
    else:
        units = int(layer.units)
        gates = 4 if kind == "LSTMCell" else 3
        flops = (lstm_flops if kind == "LSTMCell" else gru_flops)(shape_in[0], shape_in[-1], units)
        kernel = ("matmul", shape_in[0], shape_in[-1] + units, gates * units)
    return LayerCall(str(layer.name), kind, shape_in, shape_out, int(flops), kernel)


def kernel_flops(kernel: tuple[Any, ...]) -> int:
    """FLOPs of one :attr:`LayerCall.kernel` (a matmul's ``2 m k n``; a convolution's from its output size, which
    the input shape, strides, padding and dilation give, as Keras computes it)."""
    if kernel[0] == "matmul":
        _, m, k, n = kernel
        return 2 * int(m) * int(k) * int(n)
    _, shape_in, (k_h, k_w, c_in, c_out), strides, padding, dilation = kernel
    out = []
    for size, k, s, d in zip(shape_in[1:3], (k_h, k_w), strides, dilation, strict=True):
        span = (k - 1) * d + 1
        out.append(-(-size // s) if padding == "same" else (size - span) // s + 1)
    return conv2d_flops(shape_in[0], out[0], out[1], k_h, k_w, c_in, c_out)


@contextlib.contextmanager
def record_calls() -> Iterator[list[LayerCall]]:
    """Within the block, every eager call of a counted layer appends a :class:`LayerCall` to the yielded list.

    Wraps the ``call`` of the layer classes themselves and restores them on exit. Run the forward pass eagerly
    (call the model, not a compiled function): a traced call is seen once, not once per execution."""
    import keras

    calls: list[LayerCall] = []
    classes = {
        "Dense": keras.layers.Dense,
        "Conv2D": keras.layers.Conv2D,
        "LSTMCell": keras.layers.LSTMCell,
        "GRUCell": keras.layers.GRUCell,
    }
    saved: dict[str, tuple[type, Any, bool]] = {}

    def wrap(kind: str, original: Callable) -> Callable:
        def call(self, *args: Any, **kwargs: Any) -> Any:
            out = original(self, *args, **kwargs)
            calls.append(_count(self, kind, args, out))
            return out

        return call

    for kind, cls in classes.items():
        own = "call" in cls.__dict__
        saved[kind] = (cls, cls.__dict__.get("call"), own)
        cls.call = wrap(kind, cls.call)
    try:
        yield calls
    finally:
        for cls, original, own in saved.values():
            if own:
                cls.call = original
            else:
                del cls.call


def forward_flops(forward: Callable[[], Any]) -> tuple[int, list[LayerCall]]:
    """FLOPs of one run of ``forward`` (a function that calls the network eagerly), and the calls counted."""
    with record_calls() as calls:
        forward()
    return sum(c.flops for c in calls), list(calls)
