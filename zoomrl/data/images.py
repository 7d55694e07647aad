"""Loading a detection data set for a run: annotations, decoded images (kept in a bounded memory cache), the
boxes of one class."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from zoomrl.core.cache import LRUCache
from zoomrl.data.voc import (
    DataError,
    LoadReport,
    VocImage,
    class_spellings,
    is_uniform_scale,
    load_dataset,
    load_rgb,
    require_class,
)

Log = Callable[[str], None]


def load_images(
    roots: Sequence[str | os.PathLike],
    image_set: str | None,
    class_name: str,
    skip_bad: bool,
    max_images: int | None,
    log: Log,
    progress: bool = True,
    report: LoadReport | None = None,
) -> list[VocImage]:
    """Read the VOC annotations of ``image_set`` from ``roots``; checks that the class exists there.

    Every image file is decoded once here (cheaply, see :func:`zoomrl.data.voc.verify_image`), so a truncated or
    empty image stops the run before training with one line naming it, or, with ``skip_bad``, is dropped and
    counted in the summary line (``max_images`` then counts the images kept). ``progress`` shows a tqdm bar when
    the check takes more than two seconds. Pass ``report`` to keep what was skipped (testing writes
    :meth:`LoadReport.skipped_record` into results.json).

    Class names match without regard to case (:func:`zoomrl.data.voc.same_class`); when the annotations spell
    the class otherwise, one line says so, in training and testing alike.
    """
    report = report if report is not None else LoadReport()
    images = load_dataset(
        roots,
        image_set,
        class_name,
        skip_bad=skip_bad,
        max_images=max_images,
        report=report,
        verify_images=True,
        progress=progress,
    )
    where = ", ".join(str(r) for r in roots) + (f" (image set '{image_set}')" if image_set else "")
    if not images:
        raise ValueError(f"no images found in {where}")
    require_class(images, class_name, where)
    spellings = class_spellings(images, class_name)
    other = {k: v for k, v in spellings.items() if k != class_name}
    if other:
        log(
            f"data: class '{class_name}' matched without regard to case: "
            + ", ".join(f"'{k}' ({v} object(s))" for k, v in sorted(other.items()))
        )
    if report.summary():
        log(f"data: {report.summary()}")
    return images


class ImageStore:
    """Decoded RGB images, kept in memory up to ``max_mb`` (least recently used out), by :attr:`VocImage.key`
    (the file's content, so two roots with the same folder name and ids never share pixels)."""

    def __init__(self, max_mb: float = 1024) -> None:
        self._cache = LRUCache(int(max_mb * 2**20))

    def get(self, image: VocImage) -> np.ndarray:
        key = image.key
        value = self._cache.get(key)
        if value is None:
            value = load_rgb(image.image_path)
            self._cache.put(key, value)
        return value


def class_objects(image: VocImage, pixels: np.ndarray, class_name: str) -> tuple[np.ndarray, np.ndarray]:
    """The class's boxes ``(N, 4)`` (pixel edges) and difficult flags, rescaled to the decoded image when the
    annotation's ``<size>`` is a uniform scale of it, and clipped to it. Any other disagreement (width and height
    swapped, another aspect ratio) is a :class:`DataError` naming both sizes, never a silent rescale; loading with
    ``verify_images`` finds it before training (:func:`zoomrl.data.voc.check_size`)."""
    boxes = image.boxes(class_name)
    h, w = pixels.shape[:2]
    if (w, h) != (image.width, image.height):
        if not is_uniform_scale((image.width, image.height), (w, h)):
            raise DataError(
                f"{image.annotation_path}: <size> says {image.width}x{image.height} (width x height), "
                f"but {image.image_path} is {w}x{h}; expected the same size or a uniform scale"
            )
        boxes = boxes * np.array([w / image.width, h / image.height] * 2)
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
    return boxes, image.difficult(class_name)
