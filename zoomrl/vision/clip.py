"""A CLIP image encoder as the box descriptor (``--features clip`` of the active family).

The encoder comes from keras-hub's CLIP presets (``pip install zoomrl[clip]``): :func:`build_clip_feature_model` loads
``CLIPBackbone.from_preset(preset)`` (a preset name, downloaded once when online, or a local preset folder) and keeps
its image side: the vision transformer, its pooler and the projection, i.e. the CLIP image embedding (512 values for
``clip_vit_base_patch32``). Each box (with the R-CNN context, as for ``vgg``) is cropped from the (masked) image,
resized bilinearly to the encoder's input side, scaled to [0, 1] and normalised with CLIP's published per-channel
mean and standard deviation, then embedded; embeddings are cached by ``(image, mask state, window)`` as the warped
VGG crops are.

With ``random_weights`` (``--weights none``) the preset's architecture (:data:`ARCHITECTURES`, or any given one) is
built with random weights, and one line says that the weights are not pretrained: for tests and wiring checks only.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from zoomrl.core.geometry import pixel_window
from zoomrl.vision.backbone import WeightsError
from zoomrl.vision.features import FeatureModel, Request, _lookup

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
"""The per-channel RGB mean and standard deviation (of [0, 1] pixels) CLIP was trained with."""

ARCHITECTURES: dict[str, dict[str, Any]] = {
    # The image side of OpenAI's ViT-B/32 and ViT-B/16 CLIP (Radford et al. 2021), for random-weight builds.
    "clip_vit_base_patch32": {
        "patch_size": 32,
        "hidden_dim": 768,
        "num_layers": 12,
        "num_heads": 12,
        "intermediate_dim": 3072,
        "image_size": 224,
        "projection_dim": 512,
    },
    "clip_vit_base_patch16": {
        "patch_size": 16,
        "hidden_dim": 768,
        "num_layers": 12,
        "num_heads": 12,
        "intermediate_dim": 3072,
        "image_size": 224,
        "projection_dim": 512,
    },
}
"""Vision architectures by preset name: what ``random_weights`` builds without downloading anything."""

KERAS_HUB_MISSING = "--features clip needs keras-hub (pip install 'zoomrl[clip]' or pip install keras-hub)"


def _keras_hub() -> Any:
    try:
        import keras_hub
    except ImportError:
        raise WeightsError(KERAS_HUB_MISSING) from None
    return keras_hub


def random_clip_backbone(architecture: Mapping[str, Any]) -> Any:
    """A ``keras_hub.models.CLIPBackbone`` of the given vision ``architecture`` (keys of :data:`ARCHITECTURES`)
    with random weights; its text side is a minimal encoder (never used here, but the backbone needs one)."""
    hub = _keras_hub()
    a = dict(architecture)
    side = int(a["image_size"])
    vision = hub.models.CLIPVisionEncoder(
        patch_size=int(a["patch_size"]),
        hidden_dim=int(a["hidden_dim"]),
        num_layers=int(a["num_layers"]),
        num_heads=int(a["num_heads"]),
        intermediate_dim=int(a["intermediate_dim"]),
        image_shape=(side, side, 3),
    )
    text = hub.models.CLIPTextEncoder(
        vocabulary_size=16,
        embedding_dim=8,
        hidden_dim=8,
        num_layers=1,
        num_heads=1,
        intermediate_dim=8,
        max_sequence_length=4,
    )
    return hub.models.CLIPBackbone(vision_encoder=vision, text_encoder=text, projection_dim=int(a["projection_dim"]))


def load_clip_backbone(preset: str) -> Any:
    """``CLIPBackbone.from_preset(preset)`` with its pretrained weights; a failure (offline, unknown preset, damaged
    folder) is one :class:`WeightsError` line saying what to do."""
    hub = _keras_hub()
    try:
        return hub.models.CLIPBackbone.from_preset(preset)
    except Exception as exc:  # noqa: BLE001 - downloads and file formats fail in many types
        first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise WeightsError(
            f"CLIP preset '{preset}' could not be loaded ({type(exc).__name__}: {first}); connect to "
            "the network once, pass a local preset folder with --clip-preset, or --weights none for "
            "random weights (tests only)"
        ) from None


def image_encoder(backbone: Any) -> tuple[Callable[[np.ndarray], np.ndarray], int, int]:
    """The image side of a ``CLIPBackbone``: ``(embed, side, size)``, where ``embed`` maps normalised images
    ``(N, side, side, 3)`` to their CLIP embeddings ``(N, size)`` (encoder, pooler, projection)."""
    import keras

    shape = tuple(backbone.vision_encoder.image_shape)
    images = keras.Input(shape=shape, name="images")
    model = keras.Model(images, backbone.get_vision_embeddings(images), name="clip_image_encoder")
    model.trainable = False

    def embed(batch: np.ndarray) -> np.ndarray:
        return keras.ops.convert_to_numpy(model(batch, training=False)).astype(np.float32)

    return embed, int(shape[0]), int(model.output.shape[-1])


def normalise(images: np.ndarray) -> np.ndarray:
    """RGB uint8 images ``(..., 3)`` to CLIP's input: ``(x / 255 - mean) / std`` per channel, float32."""
    return ((np.asarray(images, dtype=np.float32) / 255.0 - CLIP_MEAN) / CLIP_STD).astype(np.float32)


class ClipCrops(FeatureModel):
    """The CLIP embedding of every visited box (see the module docstring); ``embed`` is :func:`image_encoder`'s."""

    variant = "clip"

    def __init__(
        self, embed: Callable[[np.ndarray], np.ndarray], side: int, size: int, fingerprint: str, **kwargs: Any
    ) -> None:
        super().__init__(embed, fingerprint, **kwargs)  # type: ignore[arg-type]
        self.side = int(side)
        self.size = int(size)

    @property
    def descriptor_size(self) -> int:
        return self.size

    def crop(self, image: np.ndarray, window: Sequence[float]) -> np.ndarray:
        """The window ``(x1, y1, x2, y2)`` of ``image`` resized bilinearly to the encoder's side, uint8."""
        h, w = image.shape[:2]
        x1, y1, x2, y2 = pixel_window(window, w, h)
        region = Image.fromarray(np.ascontiguousarray(image[y1:y2, x1:x2]))
        return np.asarray(region.resize((self.side, self.side), Image.BILINEAR), dtype=np.uint8)

    def describe(self, requests: Sequence[Request]) -> np.ndarray:
        import time

        out = np.empty((len(requests), self.size), dtype=np.float32)
        missing: dict[Hashable, list[int]] = {}
        for i, r in enumerate(requests):
            h, w = r.image.shape[:2]
            key = (r.image_key, r.mask_key, pixel_window(r.window, w, h))
            hit = _lookup(self, key, single=True)
            if hit is not None:
                out[i] = hit
            else:
                missing.setdefault(key, []).append(i)
        keys = list(missing)
        for start in range(0, len(keys), self.batch_size):
            chunk = keys[start : start + self.batch_size]
            crops = np.stack([self.crop(requests[missing[k][0]].image, requests[missing[k][0]].window) for k in chunk])
            t0 = time.perf_counter()
            embeddings = np.asarray(self.backbone(normalise(crops)), dtype=np.float32)
            self.backbone_seconds += time.perf_counter() - t0
            self.backbone_calls += 1
            self.backbone_images += len(chunk)
            for k, d in zip(chunk, embeddings):
                d = d.copy()
                self.cache.put(k, d)
                for i in missing[k]:
                    out[i] = d
        return out


def _fingerprint(backbone: Any) -> str:
    import hashlib

    import keras

    digest = hashlib.sha1()
    for w in backbone.vision_encoder.weights + backbone.vision_projection.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(w)).tobytes())
    return digest.hexdigest()[:16]


def build_clip_feature_model(
    preset: str,
    *,
    random_weights: bool = False,
    architecture: Mapping[str, Any] | None = None,
    batch_size: int = 16,
    cache_mb: float = 1024,
    log: Callable[[str], None] = print,
) -> ClipCrops:
    """The CLIP feature model of ``preset`` (a keras-hub preset name or a local preset folder), pretrained; with
    ``random_weights``, ``architecture`` (default: the preset's in :data:`ARCHITECTURES`) with random weights,
    saying so in one line. ``weights_name`` records which."""
    if random_weights:
        arch = architecture if architecture is not None else ARCHITECTURES.get(preset)
        if arch is None:
            raise WeightsError(
                f"--weights none with --clip-preset {preset}: no known architecture for a random "
                f"build; expected one of {', '.join(sorted(ARCHITECTURES))}"
            )
        backbone = random_clip_backbone(arch)
        name = f"random ({preset} architecture)" if architecture is None else "random (given architecture)"
        log(f"WARNING: CLIP image encoder: the weights are NOT pretrained ({name}): for tests only")
    else:
        backbone = load_clip_backbone(preset)
        name = f"keras-hub {preset}"
    embed, side, size = image_encoder(backbone)
    model = ClipCrops(embed, side, size, _fingerprint(backbone), batch_size=batch_size, cache_mb=cache_mb, log=log)
    model.weights_name = name  # type: ignore[attr-defined]
    return model


__all__ = [
    "ClipCrops",
    "build_clip_feature_model",
    "image_encoder",
    "load_clip_backbone",
    "random_clip_backbone",
    "normalise",
    "ARCHITECTURES",
    "CLIP_MEAN",
    "CLIP_STD",
]
