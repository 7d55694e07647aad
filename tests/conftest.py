"""Shared test helpers: a VOC writer, cheap stand-ins for VGG-16, and where ../shared is."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parent.parent

from zoomrl.core.geometry import box_to_voc  # noqa: E402
from zoomrl.vision.features import FeatureModel, Request  # noqa: E402

SHARED = REPO.parent / "shared"
needs_shared = pytest.mark.skipif(not (SHARED / "data").is_dir(), reason="../shared/data is absent")


def write_voc(
    root: Path, items: Sequence[tuple[str, np.ndarray, list[tuple]]], image_set: str = "trainval", ext: str = ".jpg"
) -> Path:
    """Write a VOC-layout root. ``items``: (image id, RGB uint8 array, [(name, box pixel edges, difficult,
    truncated), ...])."""
    from PIL import Image

    for d in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for image_id, pixels, objects in items:
        Image.fromarray(pixels).save(root / "JPEGImages" / f"{image_id}{ext}", quality=95)
        h, w = pixels.shape[:2]
        objs = ""
        for name, box, difficult, truncated in objects:
            x1, y1, x2, y2 = box_to_voc(box)
            objs += (
                f"<object><name>{name}</name><truncated>{int(truncated)}</truncated>"
                f"<difficult>{int(difficult)}</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
                f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
            )
        (root / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><filename>{image_id}{ext}</filename><size><width>{w}</width><height>{h}</height>"
            f"<depth>3</depth></size>{objs}</annotation>"
        )
    (root / "ImageSets" / "Main" / f"{image_set}.txt").write_text("\n".join(i for i, _, _ in items) + "\n")
    return root


def square_task(n: int, seed: int, size: int = 64) -> list[tuple[str, np.ndarray, list[tuple]]]:
    """A tiny synthetic detection task: one bright square ('box') of side 28-40 px on a dark noisy 64x64 image."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        img = rng.integers(0, 40, size=(size, size, 3)).astype(np.uint8)
        side = int(rng.integers(28, 41))
        x, y = (int(v) for v in rng.integers(0, size - side + 1, size=2))
        img[y : y + side, x : x + side] = (230, 230, 230)
        items.append((f"sq{i:03d}", img, [("box", (x, y, x + side, y + side), False, False)]))
    return items


def fake_backbone(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A cheap stand-in for VGG-16 with the same output shapes: average pools of the image by 16 and 32,
    spread over 512 channels with fixed per-channel weights (position-sensitive, deterministic)."""
    n, h, w, _ = batch.shape
    weights = np.linspace(-1.0, 1.0, 512 * 3, dtype=np.float32).reshape(3, 512)

    def pool(stride: int) -> np.ndarray:
        hh, ww = max(h // stride, 1), max(w // stride, 1)
        crop = batch[:, : hh * stride, : ww * stride] if h >= stride and w >= stride else batch
        sh, sw = crop.shape[1] // hh, crop.shape[2] // ww
        pooled = crop[:, : hh * sh, : ww * sw].reshape(n, hh, sh, ww, sw, 3).mean(axis=(2, 4))
        return np.maximum(pooled @ weights, 0.0).astype(np.float32)

    return pool(16), pool(32)


class TinyFeatures(FeatureModel):
    """Descriptor = the window's 6x6 grey-level thumbnail in [0, 1] (36 values): enough to learn the square
    task in seconds, with the feature-model contract of the VGG ones."""

    variant = "tiny"

    def __init__(self) -> None:
        super().__init__(backbone=fake_backbone, fingerprint="tiny", cache_mb=64)

    @property
    def descriptor_size(self) -> int:
        return 36

    def describe(self, requests: Sequence[Request]) -> np.ndarray:
        from PIL import Image

        from zoomrl.core.geometry import pixel_window

        out = np.empty((len(requests), 36), dtype=np.float32)
        for i, r in enumerate(requests):
            h, w = r.image.shape[:2]
            x1, y1, x2, y2 = pixel_window(r.window, w, h)
            grey = Image.fromarray(r.image[y1:y2, x1:x2]).convert("L").resize((6, 6), Image.BILINEAR)
            out[i] = np.asarray(grey, dtype=np.float32).reshape(-1) / 255.0
        return out


@pytest.fixture(scope="module")
def square_voc(tmp_path_factory) -> Path:
    """A VOC root with the square task: ``train/`` (4 trainval images, seed 0) and ``test/`` (2 test images, seed 1),
    one per test module (the active family's tests train on it)."""
    root = tmp_path_factory.mktemp("square_voc")
    write_voc(root / "train", square_task(4, 0))
    write_voc(root / "test", square_task(2, 1), image_set="test")
    return root
