"""Pascal VOC layout reader. Plain NumPy + Pillow; no Keras.

A VOC-layout root holds ``Annotations/<id>.xml``, ``JPEGImages/<id>.jpg`` (or ``.png``/``.jpeg``) and
``ImageSets/Main/<set>.txt`` or ``ImageSets/Main/<class>_<set>.txt``. Boxes are returned as
``(x1, y1, x2, y2)`` in 0-based pixel-edge coordinates (see :mod:`zoomrl.core.geometry`), converted from VOC's 1-based
inclusive indices and clipped to the image.

Rules that keep wrong data from passing in silence (docs/faults.md, issue 22):

* **Pixels.** Every family decodes through :func:`load_rgb`, which turns every Pillow mode into 8-bit RGB by the
  mode's real range: 16-bit grey (``I;16*``) is scaled by 255/65535, never clipped; alpha is composited on white.
  Pixels are used as stored (an EXIF orientation is not applied), as every annotation size check assumes.
* **Sizes.** An annotation's ``<size>`` must match the decoded image or be a uniform scale of it (checked when the
  images are verified); anything else, e.g. width and height swapped, is a one-line :class:`DataError`.
* **Class names** match without regard to case (:func:`same_class`): ``Raccoon`` in an XML is ``raccoon``.
* **Identity.** :attr:`VocImage.key` is made from the image file's content, never from its folder's name.
"""

from __future__ import annotations

import hashlib
import math
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
        """What the image and feature caches (memory and disk) know this image by: ``<id>@<content digest>``.

        The digest is of the file's bytes (:func:`content_digest`), so two roots whose folders share a name and
        an id, or an image replaced in place, never share cached pixels or features; the id only makes it
        readable in messages."""
        return f"{self.image_id}@{content_digest(self.image_path)}"

    def boxes(self, class_name: str, include_difficult: bool = True) -> np.ndarray:
        """``(N, 4)`` boxes ``(x1, y1, x2, y2)``, pixel edges, of ``class_name`` (any case, see :func:`same_class`)."""
        sel = [o.box for o in self.objects if same_class(o.name, class_name) and (include_difficult or not o.difficult)]
        return np.asarray(sel, dtype=np.float64).reshape(-1, 4)

    def difficult(self, class_name: str) -> np.ndarray:
        """Difficult flags of the objects of ``class_name``, in the order of :meth:`boxes`."""
        return np.array([o.difficult for o in self.objects if same_class(o.name, class_name)], dtype=bool)


def same_class(name: str, class_name: str) -> bool:
    """The one rule for class names, in training and testing alike: they match without regard to case or
    surrounding spaces (``Raccoon`` is ``raccoon``). Annotation tools differ in case; no data set uses case to
    tell two classes apart."""
    return name.strip().casefold() == class_name.strip().casefold()


_DIGESTS: dict[tuple[str, int, int, int], str] = {}
"""Digests already computed in this process, by (resolved path, size, mtime in ns, inode)."""


def content_digest(path: Path) -> str:
    """A digest (BLAKE2b, 128 bits, hex) of the bytes of the file at ``path``.

    Computed once per file version in a process: a file whose size, modification time or inode changes is read
    again, so an image replaced during a run gets a new digest; a new run always reads the bytes."""
    resolved = Path(path).resolve()
    st = resolved.stat()
    memo = (str(resolved), st.st_size, st.st_mtime_ns, st.st_ino)
    digest = _DIGESTS.get(memo)
    if digest is None:
        h = hashlib.blake2b(digest_size=16)
        with open(resolved, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = _DIGESTS[memo] = h.hexdigest()
    return digest


@dataclass(frozen=True)
class SkippedImage:
    """An image ``--skip-bad`` left out: its file, why, and its annotation when it could be read (None when the
    annotation itself was the fault, so its objects are unknown)."""

    path: str
    reason: str
    image: VocImage | None = None


@dataclass
class LoadReport:
    """What was skipped while reading, so the scripts can print one summary line."""

    bad_files: list[str] = field(default_factory=list)
    degenerate_boxes: int = 0
    clipped_boxes: int = 0
    bad_images: list[str] = field(default_factory=list)
    """Images whose annotation is fine but whose file does not decode (checked with ``verify_images``)."""
    bad_sizes: list[str] = field(default_factory=list)
    """Annotations whose ``<size>`` is not the image's size nor a uniform scale of it."""
    duplicates: list[str] = field(default_factory=list)
    """``<root>/<id>`` listed again in an image set (kept once)."""
    skipped: list[SkippedImage] = field(default_factory=list)
    """Every image left out by ``skip_bad``, for the results (:meth:`skipped_record`)."""

    def summary(self) -> str:
        parts = []
        if self.bad_files:
            parts.append(f"skipped {len(self.bad_files)} unreadable file(s) (first: {self.bad_files[0]})")
        if self.bad_images:
            parts.append(f"skipped {len(self.bad_images)} undecodable image(s) (first: {self.bad_images[0]})")
        if self.bad_sizes:
            parts.append(
                f"skipped {len(self.bad_sizes)} image(s) whose annotated size is not theirs "
                f"(first: {self.bad_sizes[0]})"
            )
        if self.duplicates:
            parts.append(
                f"ignored {len(self.duplicates)} id(s) listed twice in the image set (first: {self.duplicates[0]})"
            )
        if self.degenerate_boxes:
            parts.append(f"skipped {self.degenerate_boxes} degenerate box(es)")
        if self.clipped_boxes:
            parts.append(f"clipped {self.clipped_boxes} box(es) to their image")
        return "; ".join(parts)

    def skipped_record(self, class_name: str) -> dict[str, object]:
        """What results.json records of the skipped images, so an AP is never read as covering them: how many,
        the objects of ``class_name`` they held (``difficult`` included in ``objects``), and how many could not
        be counted because their annotation was the fault (``objects_unknown``)."""
        files = []
        for s in self.skipped:
            n = None if s.image is None else int(len(s.image.boxes(class_name)))
            d = None if s.image is None else int(s.image.difficult(class_name).sum())
            files.append({"file": s.path, "reason": s.reason, "objects": n, "difficult": d})
        return {
            "images": len(files),
            "objects": sum(f["objects"] or 0 for f in files),
            "difficult": sum(f["difficult"] or 0 for f in files),
            "objects_unknown": sum(f["objects"] is None for f in files),
            "files": files,
        }


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
        if not all(math.isfinite(c) for c in coords):
            # float() reads 'nan' and 'inf'; a NaN box passes every comparison below and would be kept.
            raise DataError(f"{path}: object '{name}' has a non-finite box coordinate ({coords}); expected numbers")
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
            seen: set[str] = set()
            for image_id in read_image_set(root, image_set, class_name):
                if max_images is not None and len(images) >= max_images:
                    return images
                if image_id in seen:
                    # A second copy would count its objects twice in the AP and train on it twice.
                    report.duplicates.append(f"{root}/{image_id}")
                    continue
                seen.add(image_id)
                ann = root / "Annotations" / f"{image_id}.xml"
                try:
                    if not ann.is_file():
                        raise DataError(f"{ann}: annotation listed in the image set is missing")
                    image = parse_annotation(ann, root, report)
                except DataError as exc:
                    if not skip_bad:
                        raise
                    report.bad_files.append(str(ann))
                    report.skipped.append(SkippedImage(str(ann), str(exc)))
                    continue
                if verify_images:
                    if bar is not None:
                        bar.update(1)
                    try:
                        size = verify_image(image.image_path)
                    except DataError as exc:
                        if not skip_bad:
                            raise
                        report.bad_images.append(str(image.image_path))
                        report.skipped.append(SkippedImage(str(image.image_path), str(exc), image))
                        continue
                    try:
                        check_size(image, size)
                    except DataError as exc:
                        if not skip_bad:
                            raise
                        report.bad_sizes.append(str(image.annotation_path))
                        report.skipped.append(SkippedImage(str(image.annotation_path), str(exc), image))
                        continue
                images.append(image)
    finally:
        if bar is not None:
            bar.close()
    return images


def is_uniform_scale(annotated: tuple[int, int], real: tuple[int, int]) -> bool:
    """Whether ``real`` (width, height) is ``annotated`` scaled by one factor on both axes, to within a pixel of
    rounding each way (an annotation made on a resized copy of the image)."""
    (aw, ah), (rw, rh) = annotated, real
    if min(aw, ah, rw, rh) <= 0:
        return False
    return abs(rw - aw * rh / ah) <= 1.0 and abs(rh - ah * rw / aw) <= 1.0


def check_size(image: VocImage, real: tuple[int, int]) -> None:
    """Raise :class:`DataError` naming the annotation and both sizes unless the decoded image's ``real``
    (width, height) equals the annotation's ``<size>`` or is a uniform scale of it (then boxes are rescaled by
    :func:`zoomrl.data.images.class_objects`). A swap of width and height (a rotated photo) is an error, never
    a silent rescale: the boxes would land elsewhere."""
    annotated = (image.width, image.height)
    if annotated == tuple(real) or is_uniform_scale(annotated, tuple(real)):
        return
    hint = ""
    if annotated == (real[1], real[0]):
        hint = "; width and height are swapped"
        orientation = exif_orientation(image.image_path)
        if orientation in (5, 6, 7, 8):
            hint += (
                f" (the image's EXIF orientation {orientation} turns it by 90 degrees when shown: it was "
                f"annotated as shown, zoomrl reads the pixels as stored)"
            )
    raise DataError(
        f"{image.annotation_path}: <size> says {annotated[0]}x{annotated[1]} (width x height), but "
        f"{image.image_path} is {real[0]}x{real[1]}{hint}; expected the same size or a uniform scale "
        f"(fix the annotation, or pass --skip-bad to leave the image out)"
    )


def exif_orientation(path: Path) -> int | None:
    """The EXIF orientation tag (1-8) of ``path``, None when absent or unreadable."""
    try:
        with Image.open(path) as im:
            value = im.getexif().get(0x0112)
    except _DECODE_ERRORS:
        return None
    return int(value) if isinstance(value, int) else None


def class_names(images: Iterable[VocImage]) -> list[str]:
    """Sorted names of every class present in ``images``."""
    return sorted({o.name for im in images for o in im.objects})


def class_spellings(images: Iterable[VocImage], class_name: str) -> dict[str, int]:
    """How many objects match ``class_name`` (:func:`same_class`) under each spelling found in ``images``."""
    counts: dict[str, int] = {}
    for im in images:
        for o in im.objects:
            if same_class(o.name, class_name):
                counts[o.name] = counts.get(o.name, 0) + 1
    return counts


def require_class(images: Sequence[VocImage], class_name: str, where: str) -> None:
    """Raise :class:`DataError` when no image has an object of ``class_name``, listing the classes present."""
    if not any(same_class(o.name, class_name) for im in images for o in im.objects):
        present = class_names(images)
        raise DataError(
            f"class '{class_name}' has no object in {where}; classes present: {', '.join(present) or 'none'}"
        )


def allow_large_images() -> None:
    """Let Pillow decode images above its decompression-bomb limit (``--allow-large-images``)."""
    Image.MAX_IMAGE_PIXELS = None


def _image_error(path: Path, exc: BaseException) -> DataError:
    if isinstance(exc, Image.DecompressionBombError):
        return DataError(
            f"{path}: image too large to decode safely ({str(exc).split('.')[0]}); pass "
            f"--allow-large-images if it is trusted"
        )
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DataError(f"{path}: unreadable image ({text})")


_DECODE_ERRORS = (Image.DecompressionBombError, OSError, UnidentifiedImageError, ValueError, SyntaxError, EOFError)


_ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")
_WIDE_MODES = ("I", "F")
"""Modes whose values are not 0-255 (besides every ``I;16*``)."""


def _is_wide(mode: str) -> bool:
    return mode in _WIDE_MODES or mode.startswith("I;")


def _wide_to_grey8(im: Image.Image, path: Path) -> np.ndarray:
    """An ``(H, W)`` uint8 grey image from a 16-bit, 32-bit integer or float one, scaled by the real range of its
    mode, never clipped (clipping turned a 16-bit PNG all white):

    * ``I;16``, ``I;16B``, ``I;16L``, ``I;16N`` (16-bit grey PNG): 0-65535, scaled by 255/65535;
    * ``I`` (32-bit integers, how older Pillow opened 16-bit PNGs): values must lie in 0-65535 and are read as 16
      bit; anything else has no known range and is refused;
    * ``F`` (32-bit float): 0-1 (a normalised image) is scaled by 255; 0-255 (Pillow's own convention, L to F) is
      kept; anything else, or a NaN, is refused.
    """
    a = np.asarray(im, dtype=np.float64)
    mode = im.mode
    lo = float(np.min(a)) if a.size else 0.0
    hi = float(np.max(a)) if a.size else 0.0
    if mode.startswith("I;16"):
        full = 65535.0
    elif mode.startswith("I"):
        if lo < 0 or hi > 65535:
            raise DataError(
                f"{path}: {mode} image with values {lo:g} to {hi:g}; expected 8- or 16-bit pixels (0-65535)"
            )
        full = 65535.0
    else:
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0 or hi > 255:
            raise DataError(f"{path}: floating-point image with values {lo:g} to {hi:g}; expected 0-1 or 0-255")
        full = 1.0 if hi <= 1.0 else 255.0
    return np.rint(a * (255.0 / full)).astype(np.uint8)


def to_rgb8(im: Image.Image, path: Path) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 RGB array from a decoded image of any Pillow mode (the one conversion every
    family's images go through):

    * ``RGB``, ``L``, ``1`` (0 and 255), ``P`` (its palette), ``CMYK``, ``YCbCr``: Pillow's own conversion;
    * with alpha (``LA``, ``PA``, ``RGBA``, ``La``, ``RGBa``) or a transparent colour (``transparency``): composited
      on white, so hidden pixels do not show;
    * 16-bit, 32-bit integer and float grey: scaled by their mode's range (:func:`_wide_to_grey8`).

    A mode Pillow cannot turn into RGB (``LAB``, ``HSV``, ...) is a :class:`DataError` naming the file."""
    if _is_wide(im.mode):
        grey = _wide_to_grey8(im, path)
        return np.repeat(grey[..., None], 3, axis=2)
    try:
        if im.mode in _ALPHA_MODES or "transparency" in im.info:
            rgba = im.convert("RGBA")
            im = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), rgba)
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except ValueError as exc:
        raise DataError(
            f"{path}: image mode {im.mode} cannot be read as RGB ({exc}); expected a photo in RGB, "
            f"grey, palette or CMYK"
        ) from None


def verify_image(path: Path) -> tuple[int, int]:
    """Decode ``path`` cheaply (JPEGs at 1/8 scale, which still reads the whole stream) and return its full
    ``(width, height)``; an undecodable, truncated or empty file, one above Pillow's decompression-bomb limit, or
    one whose pixels have no known range, raises :class:`DataError` naming it, exactly as :func:`load_rgb` would."""
    try:
        with Image.open(path) as im:
            size = im.size
            if im.format == "JPEG":
                im.draft("RGB", (max(1, size[0] // 8), max(1, size[1] // 8)))
            im.load()
            if _is_wide(im.mode):
                _wide_to_grey8(im, Path(path))
            return size
    except _DECODE_ERRORS as exc:
        if isinstance(exc, DataError):
            raise
        raise _image_error(Path(path), exc) from None


def load_rgb(path: Path) -> np.ndarray:
    """Read an image as an ``(H, W, 3)`` uint8 RGB array, whatever its mode (see :func:`to_rgb8`); the pixels as
    stored (an EXIF orientation is not applied, see the module doc).

    An undecodable, truncated or empty file, or one above Pillow's decompression-bomb limit, raises
    :class:`DataError` naming it."""
    try:
        with Image.open(path) as im:
            im.load()
            return to_rgb8(im, Path(path))
    except _DECODE_ERRORS as exc:
        if isinstance(exc, DataError):
            raise
        raise _image_error(Path(path), exc) from None
