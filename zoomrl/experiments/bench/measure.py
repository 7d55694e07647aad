"""What every family's benchmark measures the same way: rates, the matmul and memory-bandwidth rooflines, the bytes
an optimizer step moves, peak memory."""

from __future__ import annotations

import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (it never goes down: read after each family, it is the peak of
    everything measured up to there)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


def traced_peak_mb(fn: Callable[[], Any]) -> float:
    """Peak of the Python-level allocations (NumPy arrays included) while ``fn`` runs. Tensors the framework
    allocates in C++ are not seen: that is what the RSS figure is for. Run apart from the timings (tracing
    slows every allocation down)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def rate(fn: Callable[[], int], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Call ``fn`` (it returns how many units it did) ``warmup`` times untimed, then ``repeats`` times timed.

    Returns the units per second of the timed calls, the seconds of the first warm-up call (tracing and compiling
    show there), the units timed, and the shortest timed call's seconds (``best_call_seconds``: what the machine
    does at its fastest moment, as the rooflines' best-of timings)."""
    first = 0.0
    for i in range(warmup):
        t0 = time.perf_counter()
        fn()
        if i == 0:
            first = time.perf_counter() - t0
    units = 0
    best = float("inf")
    t0 = time.perf_counter()
    for _ in range(repeats):
        t1 = time.perf_counter()
        units += int(fn())
        best = min(best, time.perf_counter() - t1)
    seconds = time.perf_counter() - t0
    return {
        "per_second": units / max(seconds, 1e-12),
        "first_call_seconds": first,
        "units": units,
        "seconds": seconds,
        "best_call_seconds": best,
    }


def _best_seconds(run: Callable[[], Any], repeats: int) -> float:
    """The shortest of ``repeats`` timed calls of ``run``, after one untimed call (kernels chosen, threads
    started). ``run`` brings its result to the host, so that asynchronous backends have finished."""
    run()
    best = float("inf")
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best


def matmul_roofline(size: int, dtype: str, repeats: int) -> dict[str, Any]:
    """FLOP/s of a ``size x size`` by ``size x size`` ``keras.ops.matmul`` at ``dtype``, the best of ``repeats``
    (each result brought to the host, so that asynchronous backends have finished). What one dense kernel of
    this backend reaches on this machine: the ceiling the networks' updates are compared with."""
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    a = keras.ops.convert_to_tensor(rng.standard_normal((size, size)).astype(dtype))
    b = keras.ops.convert_to_tensor(rng.standard_normal((size, size)).astype(dtype))
    best = _best_seconds(lambda: keras.ops.convert_to_numpy(keras.ops.matmul(a, b)), repeats)
    flops = 2 * size**3
    return {"size": size, "dtype": dtype, "flops_per_second": flops / best, "seconds": best}


def bandwidth_roofline(megabytes: int, dtype: str, repeats: int) -> dict[str, Any]:
    """Bytes/s of a ``keras.ops`` triad (``a * 0.5 + b`` over two arrays of ``megabytes`` each: two read, one
    written), the best of ``repeats``. What an element-wise pass such as an optimizer step can reach on this
    machine: the second ceiling, beside the matmul's, that an update is compared with."""
    import keras
    import numpy as np

    n = max(1, megabytes * 2**20 // np.dtype(dtype).itemsize)
    a = keras.ops.convert_to_tensor(np.ones(n, dtype))
    b = keras.ops.convert_to_tensor(np.ones(n, dtype))

    def triad() -> None:
        keras.ops.convert_to_numpy(keras.ops.add(keras.ops.multiply(a, 0.5), b)[:1])  # finished, one value back

    best = _best_seconds(triad, repeats)
    moved = 3 * n * np.dtype(dtype).itemsize
    return {"megabytes": megabytes, "dtype": dtype, "bytes_per_second": moved / best, "seconds": best}


def optimizer_step_bytes(models: Any) -> int:
    """The least memory one optimizer step over ``models`` (compiled Keras models, each with its ``optimizer``)
    moves: every trained weight read and written, its gradient read, and every optimizer variable read and
    written (Adam's two moments, SGD's momentum, a weight average). Adam: 7 values per weight."""
    import numpy as np

    def size(variables: Any) -> int:
        return sum(int(np.prod(v.shape)) * np.dtype(str(v.dtype)).itemsize for v in variables)

    total = 0
    for model in models:
        slots = [v for v in model.optimizer.variables if len(v.shape)]  # not its step counter, learning rate
        total += 3 * size(model.trainable_variables) + 2 * size(slots)
    return int(total)


def kernel_seconds(kernel: tuple[Any, ...], dtype: str, repeats: int, min_flops: float = 2e8) -> float:
    """Seconds of one :attr:`~zoomrl.experiments.bench.flops.LayerCall.kernel` run alone at its own shapes, the best
    of ``repeats``: what this backend's kernels can do at the network's shapes, free of the rest of its update.

    A matmul is timed as ``N`` copies in one batched ``keras.ops.matmul`` (``N`` up to 256, enough copies for
    ``min_flops``), divided by ``N``: each copy keeps the layer's shapes, and one call's dispatch is shared by all.
    A convolution is one ``keras.ops.conv`` at the layer's exact input, kernel, strides, padding and dilation,
    repeated back to back until ``min_flops`` (at most 64 times) and divided: its dispatch (tens of microseconds)
    stays in each call."""
    import keras
    import numpy as np

    from zoomrl.experiments.bench.flops import kernel_flops

    rng = np.random.default_rng(0)
    flops = kernel_flops(kernel)
    copies = int(min(256 if kernel[0] == "matmul" else 64, max(1, min_flops // max(flops, 1))))
    if kernel[0] == "matmul":
        _, m, k, n = kernel
        a = keras.ops.convert_to_tensor(rng.standard_normal((copies, m, k)).astype(dtype))
        b = keras.ops.convert_to_tensor(rng.standard_normal((copies, k, n)).astype(dtype))

        def run() -> None:
            keras.ops.convert_to_numpy(keras.ops.matmul(a, b)[0, 0, 0])

    else:
        _, shape_in, shape_k, strides, padding, dilation = kernel
        x = keras.ops.convert_to_tensor(rng.standard_normal(shape_in).astype(dtype))
        w = keras.ops.convert_to_tensor(rng.standard_normal(shape_k).astype(dtype))

        def run() -> None:
            out = None
            for _ in range(copies):
                out = keras.ops.conv(x, w, strides=strides, padding=padding, dilation_rate=dilation)
            keras.ops.convert_to_numpy(out[0, 0, 0, 0])

    return _best_seconds(run, repeats) / copies


def kernels_alone_seconds(
    parts: list[tuple[int, list[tuple[Any, ...]]]], seconds: dict[tuple[Any, ...], float], optimizer_seconds: float
) -> float:
    """An update's time if it ran nothing but its kernels at its own shapes: each part's kernels (``(factor,
    kernels)``, a kernel once per call; the factor as in the FLOP count, 3 for a network trained: its backward
    kernels taken as twice its forward ones) at their measured ``seconds``, one after the other, then its
    optimizer's step (``optimizer_seconds``, the bytes at the bandwidth). An estimate, not a floor: a backward
    kernel can run faster than its forward one, and a first layer's input needs no gradient."""
    return sum(factor * sum(seconds[k] for k in kernels) for factor, kernels in parts) + optimizer_seconds
