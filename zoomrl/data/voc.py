"""Pascal VOC layout reader. Plain NumPy + Pillow; no Keras.

A VOC-layout root holds ``Annotations/<id>.xml``, ``JPEGImages/<id>.jpg`` (or ``.png``/``.jpeg``) and
``ImageSets/Main/<set>.txt`` or ``ImageSets/Main/<class>_<set>.txt``. Boxes are returned as
``(x1, y1, x2, y2)`` in 0-based pixel-edge coordinates (see :mod:`zoomrl.core.geometry`), converted from VOC's 1-based
inclusive indices and clipped to the image.
"""

from __future__ import annotations

import operator
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from zoomrl.core.geometry import voc_to_box

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")


class DataError(ValueError):
    """Bad input data: the message is one line naming the file or value and what was expected."""


@dataclass(frozen=True)
class VocObject:
    """One annotated object. ``box`` is ``(x1, y1, x2, y2)`` in 0-based pixel edges, clipped to the image."""

    name: str
    box: tuple[float, float, float, float]
    difficult: bool = False
    truncated: bool = False


@dataclass(frozen=True)
class VocImage:
    """One image of a VOC-layout root, with all of its objects (every class)."""

    image_id: str
    image_path: Path
    annotation_path: Path
    width: int
    height: int
    objects: tuple[VocObject, ...]
    root: Path

    @property
    def key(self) -> str:
        """A key unique across several roots (the feature cache uses it)."""
        return f"{self.root.name}/{self.image_id}"

    def boxes(self, class_name: str, include_difficult: bool = True) -> np.ndarray:
        """``(N, 4)`` boxes ``(x1, y1, x2, y2)``, pixel edges, of ``class_name``."""
        sel = [o.box for o in self.objects if o.name == class_name and (include_difficult or not o.difficult)]
        return np.asarray(sel, dtype=np.float64).reshape(-1, 4)

    def difficult(self, class_name: str) -> np.ndarray:
        """Difficult flags of the objects of ``class_name``, in the order of :meth:`boxes`."""
        return np.array([o.difficult for o in self.objects if o.name == class_name], dtype=bool)


@dataclass
class LoadReport:
    """What was skipped while reading, so the scripts can print one summary line."""

    bad_files: list[str] = field(default_factory=list)
    degenerate_boxes: int = 0
    clipped_boxes: int = 0
    bad_images: list[str] = field(default_factory=list)
    """Images whose annotation is fine but whose file does not decode (checked with ``verify_images``)."""

    def summary(self) -> str:
        parts = []
        if self.bad_files:
            parts.append(f"skipped {len(self.bad_files)} unreadable file(s) (first: {self.bad_files[0]})")
        if self.bad_images:
            parts.append(f"skipped {len(self.bad_images)} undecodable image(s) (first: {self.bad_images[0]})")
        if self.degenerate_boxes:
            parts.append(f"skipped {self.degenerate_boxes} degenerate box(es)")
        if self.clipped_boxes:
            parts.append(f"clipped {self.clipped_boxes} box(es) to their image")
        return "; ".join(parts)


def _text(node: ET.Element, tag: str, path: Path) -> str:
    child = node.find(tag)
    if child is None or child.text is None:
        raise DataError(f"{path}: missing <{tag}> in the annotation")
    return child.text.strip()


def _flag(node: ET.Element, tag: str) -> bool:
    child = node.find(tag)
    if child is None or child.text is None:
        return False
    try:
        return bool(int(float(child.text.strip())))
    except ValueError:
        return False


def find_image_file(root: Path, image_id: str) -> Path | None:
    """The image file of ``image_id`` under ``root/JPEGImages``, whatever its usual extension."""
    for ext in IMAGE_EXTENSIONS:
        p = root / "JPEGImages" / f"{image_id}{ext}"
        if p.is_file():
            return p
    return None


def parse_annotation(path: Path, root: Path, report: LoadReport | None = None) -> VocImage:
    """Parse one VOC XML file. Raises :class:`DataError` (one line naming ``path``) when malformed.

    Boxes are converted to 0-based pixel edges, clipped to the image (counted in ``report``) and boxes with no
    area after clipping are dropped (counted too). When ``<size>`` is missing or zero, the image file is opened
    to read it.
    """
    report = report if report is not None else LoadReport()
    path = Path(path)
    try:
        tree = ET.parse(path)
    except (ET.ParseError, OSError) as exc:
        raise DataError(f"{path}: malformed annotation XML ({exc})") from None
    ann = tree.getroot()
    image_id = path.stem
    image_path = find_image_file(root, image_id)
    if image_path is None:
        raise DataError(f"{path}: no image {image_id}.jpg/.png under {root / 'JPEGImages'}")
    width = height = 0
    size = ann.find("size")
    if size is not None:
        try:
            width = int(float(_text(size, "width", path)))
            height = int(float(_text(size, "height", path)))
        except (DataError, ValueError):
            width = height = 0
    if width <= 0 or height <= 0:
        try:
            with Image.open(image_path) as im:
                width, height = im.size
        except _DECODE_ERRORS as exc:
            raise _image_error(image_path, exc) from None
    objects = []
    for obj in ann.findall("object"):
        name = _text(obj, "name", path)
        bnd = obj.find("bndbox")
        if bnd is None:
            raise DataError(f"{path}: object '{name}' has no <bndbox>")
        try:
            coords = [float(_text(bnd, t, path)) for t in ("xmin", "ymin", "xmax", "ymax")]
        except ValueError:
            raise DataError(f"{path}: object '{name}' has a non-numeric box coordinate") from None
        x1, y1, x2, y2 = voc_to_box(*coords)
        cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
        cx2, cy2 = min(max(x2, 0.0), width), min(max(y2, 0.0), height)
        if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2):
            report.clipped_boxes += 1
        if cx2 - cx1 <= 0 or cy2 - cy1 <= 0:
            report.degenerate_boxes += 1
            continue
        objects.append(
            VocObject(name, (cx1, cy1, cx2, cy2), difficult=_flag(obj, "difficult"), truncated=_flag(obj, "truncated"))
        )
    return VocImage(image_id, image_path, path, width, height, tuple(objects), Path(root))


def check_root(root: Path) -> None:
    """Raise :class:`DataError` unless ``root`` looks like a VOC-layout folder."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            f"data folder {root} does not exist; expected a Pascal VOC layout root with Annotations/, "
            "JPEGImages/ and ImageSets/Main/"
        )
    missing = [d for d in ("Annotations", "JPEGImages") if not (root / d).is_dir()]
    if missing:
        raise DataError(
            f"data folder {root} has no {' or '.join(missing)}/; expected a Pascal VOC layout root with "
            "Annotations/, JPEGImages/ and ImageSets/Main/"
        )


def read_image_set(root: Path, image_set: str | None, class_name: str | None = None) -> list[str]:
    """Image ids of ``image_set`` under ``root``; all annotations when ``image_set`` is None.

    Reads ``ImageSets/Main/<image_set>.txt``; if absent, ``ImageSets/Main/<class>_<image_set>.txt`` (every
    listed id, whatever its 1 / -1 / 0 flag: images without the class are negatives for the detector).
    """
    root = Path(root)
    if image_set is None:
        return sorted(p.stem for p in (root / "Annotations").glob("*.xml"))
    main = root / "ImageSets" / "Main"
    candidates = [main / f"{image_set}.txt"]
    if class_name:
        candidates.append(main / f"{class_name}_{image_set}.txt")
    for path in candidates:
        if path.is_file():
            ids = []
            for line in path.read_text().splitlines():
                parts = line.split()
                if parts:
                    ids.append(parts[0])
            return ids
    available = sorted(p.name for p in main.glob("*.txt")) if main.is_dir() else []
    raise DataError(
        f"{root}: no image set '{image_set}' (looked for {', '.join(str(c.name) for c in candidates)} in "
        f"{main}); available: {', '.join(available[:12]) or 'none'}"
    )


def load_dataset(
    roots: Sequence[str | os.PathLike],
    image_set: str | None,
    class_name: str | None = None,
    skip_bad: bool = False,
    max_images: int | None = None,
    report: LoadReport | None = None,
    verify_images: bool = False,
    progress: bool = False,
) -> list[VocImage]:
    """Read the annotations of ``image_set`` from one or several VOC roots, in file order.

    ``class_name`` only selects which split file may be used; images without the class are kept (they are
    negatives for evaluation). A malformed annotation raises :class:`DataError` unless ``skip_bad`` is set,
    in which case it is counted in ``report.bad_files``.

    ``verify_images`` also decodes every image file (:func:`verify_image`), so an undecodable one stops the
    load here, naming it, instead of a run partway through; with ``skip_bad`` it is dropped and counted in
    ``report.bad_images``. ``max_images`` counts the images kept. ``progress`` shows a tqdm bar when the check
    takes more than two seconds.
    """
    if max_images is not None:
        try:
            ok = not isinstance(max_images, bool) and operator.index(max_images) >= 1
        except TypeError:
            ok = False
        if not ok:
            raise ValueError(f"max_images: expected a positive integer or None, received {max_images!r}")
    report = report if report is not None else LoadReport()
    images: list[VocImage] = []
    bar = None
    if verify_images and progress:
        from tqdm import tqdm

        bar = tqdm(desc="checking images", unit="img", total=max_images, delay=2.0, leave=False)
    try:
        for root in roots:
            root = Path(root)
            check_root(root)
            for image_id in read_image_set(root, image_set, class_name):
                if max_images is not None and len(images) >= max_images:
                    return images
                ann = root / "Annotations" / f"{image_id}.xml"
                try:
                    if not ann.is_file():
                        raise DataError(f"{ann}: annotation listed in the image set is missing")
                    image = parse_annotation(ann, root, report)
                except DataError:
                    if not skip_bad:
                        raise
                    report.bad_files.append(str(ann))
                    continue
                if verify_images:
                    if bar is not None:
                        bar.update(1)
                    try:
                        verify_image(image.image_path)
                    except DataError:
                        if not skip_bad:
                            raise
                        report.bad_images.append(str(image.image_path))
                        continue
                images.append(image)
    finally:
        if bar is not None:
            bar.close()
    return images


def class_names(images: Iterable[VocImage]) -> list[str]:
    """Sorted names of every class present in ``images``."""
    return sorted({o.name for im in images for o in im.objects})


def require_class(images: Sequence[VocImage], class_name: str, where: str) -> None:
    """Raise :class:`DataError` when no image has an object of ``class_name``, listing the classes present."""
    if not any(o.name == class_name for im in images for o in im.objects):
        present = class_names(images)
        raise DataError(
            f"class '{class_name}' has no object in {where}; classes present: {', '.join(present) or 'none'}"
        )


def allow_large_images() -> None:
    """Let Pillow decode images above its decompression-bomb limit (``--allow-large-images``)."""
    Image.MAX_IMAGE_PIXELS = None


def _image_error(path: Path, exc: BaseException) -> DataError:
    if isinstance(exc, Image.DecompressionBombError):
        return DataError(f"{path}: image too large to decode safely ({str(exc).split('.')[0]}); pass "
                         f"--allow-large-images if it is trusted")
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DataError(f"{path}: unreadable image ({text})")


_DECODE_ERRORS = (Image.DecompressionBombError, OSError, UnidentifiedImageError, ValueError, SyntaxError, EOFError)


def verify_image(path: Path) -> tuple[int, int]:
    """Decode ``path`` cheaply (JPEGs at 1/8 scale, which still reads the whole stream) and return its full
    ``(width, height)``; an undecodable, truncated or empty file, or one above Pillow's decompression-bomb limit,
    raises :class:`DataError` naming it, exactly as :func:`load_rgb` would."""
    try:
        with Image.open(path) as im:
            size = im.size
            if im.format == "JPEG":
                im.draft("RGB", (max(1, size[0] // 8), max(1, size[1] // 8)))
            im.load()
            return size
    except _DECODE_ERRORS as exc:
        raise _image_error(Path(path), exc) from None


def load_rgb(path: Path) -> np.ndarray:
    """Read an image as an ``(H, W, 3)`` uint8 RGB array (grayscale, palette, CMYK, RGBA converted).

    An undecodable, truncated or empty file, or one above Pillow's decompression-bomb limit, raises
    :class:`DataError` naming it."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode == "RGBA" or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except _DECODE_ERRORS as exc:
        raise _image_error(Path(path), exc) from None
