"""Loading a detection data set for a run: annotations, decoded images (kept in a bounded memory cache), the
boxes of one class."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from zoomrl.core.cache import LRUCache
from zoomrl.data.voc import LoadReport, VocImage, load_dataset, load_rgb, require_class

Log = Callable[[str], None]


def load_images(
    roots: Sequence[str | os.PathLike], image_set: str | None, class_name: str, skip_bad: bool,
    max_images: int | None, log: Log, progress: bool = True,
) -> list[VocImage]:
    """Read the VOC annotations of ``image_set`` from ``roots``; checks that the class exists there.

    Every image file is decoded once here (cheaply, see :func:`zoomrl.data.voc.verify_image`), so a truncated or
    empty image stops the run before training with one line naming it, or, with ``skip_bad``, is dropped and
    counted in the summary line (``max_images`` then counts the images kept). ``progress`` shows a tqdm bar when
    the check takes more than two seconds.
    """
    report = LoadReport()
    images = load_dataset(roots, image_set, class_name, skip_bad=skip_bad, max_images=max_images, report=report,
                          verify_images=True, progress=progress)
    where = ", ".join(str(r) for r in roots) + (f" (image set '{image_set}')" if image_set else "")
    if not images:
        raise ValueError(f"no images found in {where}")
    require_class(images, class_name, where)
    if report.summary():
        log(f"data: {report.summary()}")
    return images


class ImageStore:
    """Decoded RGB images, kept in memory up to ``max_mb`` (least recently used out)."""

    def __init__(self, max_mb: float = 1024) -> None:
        self._cache = LRUCache(int(max_mb * 2**20))

    def get(self, image: VocImage) -> np.ndarray:
        value = self._cache.get(image.key)
        if value is None:
            value = load_rgb(image.image_path)
            self._cache.put(image.key, value)
        return value


def class_objects(image: VocImage, pixels: np.ndarray, class_name: str) -> tuple[np.ndarray, np.ndarray]:
    """The class's boxes ``(N, 4)`` (pixel edges) and difficult flags, rescaled to the decoded image when the
    annotation's ``<size>`` disagrees with it, and clipped to it."""
    boxes = image.boxes(class_name)
    h, w = pixels.shape[:2]
    if (w, h) != (image.width, image.height) and image.width > 0 and image.height > 0:
        boxes = boxes * np.array([w / image.width, h / image.height] * 2)
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
    return boxes, image.difficult(class_name)
