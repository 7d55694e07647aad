"""A small synthetic detection data set in Pascal VOC layout, built from scikit-learn's handwritten digits.

The digits are the real 8x8 handwritten samples of :func:`sklearn.datasets.load_digits` (1797 images,
grey levels 0..16; they ship with scikit-learn, nothing is downloaded). Each image is a cluttered colour canvas
(random colour gradient, noise and a few faint shapes) on which

* the **target digit** (default 7, class name ``"seven"``) is drawn 1 to 3 times (mostly once), at sizes from
  about 12 % to 75 % of the canvas side (ink box; about 30 to 190 px on the default 256 x 256 canvas), so some
  objects are small and some cover a large part of the image;
* several **other digits** are drawn as distractors and annotated as their own classes.

Class names are the English digit names :data:`DIGIT_NAMES` ``("zero", "one", ..., "nine")``; the class of
digit ``d`` is ``DIGIT_NAMES[d]``.

Every box is exact: the tight bounding box of the digit's ink (the pixels it paints) after scaling. In memory
(:func:`render_demo_image`) boxes are ``(x1, y1, x2, y2)`` pixel edges (see :mod:`zoomrl.core.geometry`); the XML stores
VOC's 1-based inclusive ``xmin ymin xmax ymax`` (:func:`zoomrl.core.geometry.box_to_voc`). Objects are never truncated
(the ink lies inside the canvas) and never difficult. Placements whose box has IoU > ``max_iou`` (0.1) with an
earlier object are rejected, and so are those whose ink would touch another digit's ink (boxes may overlap a
little, strokes never), so every digit is fully visible.

The trainval and test splits draw their handwriting from disjoint halves of the scikit-learn samples (test uses
the samples whose index is a multiple of 4, trainval the others), so test digits are unseen writing.

Layout written by :func:`make_demo_dataset`::

    root/JPEGImages/<id>.jpg
    root/Annotations/<id>.xml
    root/ImageSets/Main/{trainval,test}.txt
    root/ImageSets/Main/<class>_{trainval,test}.txt    # every class; lines "<id>  1" or "<id> -1"
    root/demo_info.json                                # generation parameters and the summary

Generation is deterministic for a seed: image ``j`` (0-based) of a split is
``render_demo_image(demo_image_rng(seed, split, j), canvas, target_digit, split, max_iou=max_iou)`` (when
``negative_fraction`` is 0), so the trainval images do not depend on ``n_test`` and vice versa. Image ids are
``000001``, ``000002``, ... : trainval first, then test. The files written do not depend on ``root``.
"""

from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from zoomrl.core.geometry import box_to_voc, iou_matrix

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPLITS = ("trainval", "test")
DEFAULT_DEMO_DIR = Path(os.environ.get("ZOOMRL_DEMO_DIR") or Path(__file__).resolve().parents[2] / "data" / "demo")
"""The repository's data/demo/ (an editable install), or $ZOOMRL_DEMO_DIR."""
VOC_FOLDER = "zoomrl-demo"  # the <folder> of every annotation (fixed, so the files do not depend on the path)

_SPLIT_CODE = {"trainval": 0, "test": 1}
_INK_THRESHOLD = 0.45  # a scaled grey level (0..1) above this is ink; below it the pixel is left untouched
_INK_GAP = 2  # digits' ink never touches: at least this many pixels apart (their boxes may overlap a little)
_MIN_CONTRAST = 120.0  # minimum distance (max over channels) between ink colour and local background mean


def digit_name(digit: int) -> str:
    """Class name of digit ``digit`` (0..9): ``"zero"`` .. ``"nine"``."""
    return DIGIT_NAMES[int(digit)]


@cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    images = np.asarray(data.images, dtype=np.float64) / 16.0  # (1797, 8, 8) in [0, 1]
    return images, np.asarray(data.target, dtype=np.int64)


def digit_pool(split: str) -> dict[int, np.ndarray]:
    """The 8x8 handwritten samples (grey levels scaled to [0, 1]) of each digit available to ``split``.

    ``test`` uses the scikit-learn samples whose index is a multiple of 4, ``trainval`` all others.
    """
    if split not in _SPLIT_CODE:
        raise ValueError(f"split must be one of {SPLITS}, received {split!r}")
    return _digit_pool(split)


@cache
def _digit_pool(split: str) -> dict[int, np.ndarray]:
    images, target = _digits()
    idx = np.arange(len(target))
    keep = (idx % 4 == 0) if split == "test" else (idx % 4 != 0)
    return {d: images[keep & (target == d)] for d in range(10)}


def demo_image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator of image ``index`` (0-based within its split) of ``split`` for ``seed``."""
    return np.random.default_rng((int(seed), _SPLIT_CODE[split], int(index)))


def _scale_glyph(glyph: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear upscaling of an 8x8 glyph (zero-padded by one pixel so strokes fade out) to ``(height, width)``."""
    g = np.pad(glyph, 1)
    gh, gw = g.shape
    ys = np.clip((np.arange(height) + 0.5) * gh / height - 0.5, 0, gh - 1)
    xs = np.clip((np.arange(width) + 0.5) * gw / width - 0.5, 0, gw - 1)
    y0 = np.minimum(np.floor(ys).astype(int), gh - 2)
    x0 = np.minimum(np.floor(xs).astype(int), gw - 2)
    fy = (ys - y0)[:, None]
    fx = (xs - x0)[None, :]
    top = g[y0][:, x0] * (1 - fx) + g[y0][:, x0 + 1] * fx
    bottom = g[y0 + 1][:, x0] * (1 - fx) + g[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _glyph_alpha(glyph: np.ndarray, height: int, width: int) -> np.ndarray | None:
    """Alpha mask (0 outside the ink, 0.5..1 on it) of ``glyph`` scaled to about ``height x width``, cropped to
    the tight box of its ink. ``None`` if no ink survives."""
    v = _scale_glyph(glyph, height, width)
    ink = v > _INK_THRESHOLD
    if not ink.any():
        return None
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    v = v[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return np.where(ink, np.clip(0.5 + (v - _INK_THRESHOLD) / 0.2, 0.5, 1.0), 0.0)


def _mark(occupied: np.ndarray, ink: np.ndarray, x: int, y: int, gap: int) -> None:
    """Set ``occupied`` on ``ink`` (placed with its top-left pixel at ``(x, y)``) grown by ``gap`` pixels."""
    height, width = occupied.shape
    ah, aw = ink.shape
    for dy in range(-gap, gap + 1):
        for dx in range(-gap, gap + 1):
            y0, x0 = y + dy, x + dx
            sy0, sx0 = max(0, -y0), max(0, -x0)
            sy1, sx1 = min(ah, height - y0), min(aw, width - x0)
            if sy1 > sy0 and sx1 > sx0:
                occupied[y0 + sy0 : y0 + sy1, x0 + sx0 : x0 + sx1] |= ink[sy0:sy1, sx0:sx1]


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A cluttered float background in [0, 255]: colour gradient, faint shapes, stripes and noise."""
    c0 = rng.uniform(0, 255, 3)
    c1 = np.clip(c0 + rng.normal(0, 60, 3), 0, 255)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    t = np.cos(angle) * xx / width + np.sin(angle) * yy / height
    t = (t - t.min()) / max(t.max() - t.min(), 1e-9)
    img = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]
    # faint clutter: rectangles and ellipses of a nearby colour
    for _ in range(int(rng.integers(3, 8))):
        w = rng.uniform(0.05, 0.4) * width
        h = rng.uniform(0.05, 0.4) * height
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        shift = rng.normal(0, 35, 3)
        if rng.random() < 0.5:
            m = (np.abs(xx + 0.5 - cx) < w / 2) & (np.abs(yy + 0.5 - cy) < h / 2)
        else:
            m = ((xx + 0.5 - cx) / (w / 2)) ** 2 + ((yy + 0.5 - cy) / (h / 2)) ** 2 < 1
        img[m] += shift
    if rng.random() < 0.5:  # stripes
        period = rng.uniform(8, 40)
        phase = rng.uniform(0, 2 * np.pi)
        a = rng.uniform(0, np.pi)
        img += rng.uniform(5, 15) * np.sin(2 * np.pi * (np.cos(a) * xx + np.sin(a) * yy) / period + phase)[..., None]
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255)


def _ink_colour(rng: np.random.Generator, local_mean: np.ndarray) -> np.ndarray:
    for _ in range(30):
        c = rng.uniform(0, 255, 3)
        if np.max(np.abs(c - local_mean)) >= _MIN_CONTRAST:
            return c
    # fall back to black or white, whichever contrasts more
    return np.zeros(3) if local_mean.mean() > 127.5 else np.full(3, 255.0)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def render_demo_image(
    rng: np.random.Generator,
    canvas: tuple[int, int] = (256, 256),
    target_digit: int = 7,
    split: str = "trainval",
    n_targets: int | None = None,
    n_distractors: int | None = None,
    target_size: tuple[float, float] = (0.18, 0.85),
    distractor_size: tuple[float, float] = (0.1, 0.35),
    max_iou: float = 0.1,
    return_background: bool = False,
) -> tuple[np.ndarray, list[dict[str, Any]]] | tuple[np.ndarray, list[dict[str, Any]], np.ndarray]:
    """Render one demo image in memory.

    ``canvas`` is ``(width, height)`` in pixels. ``n_targets`` (default: 1, 2 or 3 with probabilities
    0.7 / 0.2 / 0.1; 0 gives a negative image) copies of ``target_digit`` and ``n_distractors`` (default 2..5)
    other digits are placed at random; sizes are log-uniform fractions of the shorter canvas side
    (``target_size``, ``distractor_size``; the glyph's height, its width varies by 0.75..1.15 of that). A
    placement whose box has IoU > ``max_iou`` with an earlier object, or whose ink comes within 2 pixels of an
    earlier digit's ink (so no digit is painted over another), is retried (at most 50 times, shrinking
    the object after 25; an object that still does not fit is dropped, which never happens to the first target,
    placed on the empty canvas).

    Returns ``(image, objects)`` (and the uncompressed background under the digits if ``return_background``):
    ``image`` is ``(H, W, 3)`` uint8 RGB; each object is a dict with ``name`` (e.g. ``"seven"``), ``digit``,
    ``box`` (the tight box of the pixels its ink painted, ``(x1, y1, x2, y2)`` float pixel edges),
    ``difficult`` (False), ``truncated`` (False) and ``target`` (whether it is the target digit). Targets come
    first in the list.
    """
    width, height = (int(v) for v in canvas)
    if width < 16 or height < 16:
        raise ValueError(f"canvas must be at least 16x16 pixels, received {width}x{height}")
    if not 0 <= int(target_digit) <= 9:
        raise ValueError(f"target_digit must lie in 0..9, received {target_digit}")
    pool = digit_pool(split)
    side = min(width, height)
    bg = _background(rng, height, width)
    img = bg.copy()
    if n_targets is None:
        n_targets = int(rng.choice([1, 2, 3], p=[0.7, 0.2, 0.1]))
    if n_distractors is None:
        n_distractors = int(rng.integers(2, 6))
    others = [d for d in range(10) if d != int(target_digit)]
    plan = [(int(target_digit), target_size)] * int(n_targets)
    plan += [(int(rng.choice(others)), distractor_size) for _ in range(int(n_distractors))]

    objects: list[dict[str, Any]] = []
    boxes = np.zeros((0, 4))
    occupied = np.zeros((height, width), dtype=bool)  # ink painted so far, grown by _INK_GAP pixels
    for digit, (lo, hi) in plan:
        samples = pool[digit]
        glyph = samples[int(rng.integers(len(samples)))]
        size = _log_uniform(rng, lo, hi) * side
        aspect = rng.uniform(0.75, 1.15)
        placed = None
        for attempt in range(50):
            if attempt == 25:
                size *= 0.6
            h = max(int(round(size)), 8)
            w = max(int(round(size * aspect)), 8)
            alpha = _glyph_alpha(glyph, min(h, height), min(w, width))
            if alpha is None:
                break
            ah, aw = alpha.shape
            x = int(rng.integers(0, width - aw + 1))
            y = int(rng.integers(0, height - ah + 1))
            box = np.array([[x, y, x + aw, y + ah]], dtype=np.float64)
            if len(boxes) and iou_matrix(box, boxes).max() > max_iou:
                continue
            if (occupied[y : y + ah, x : x + aw] & (alpha > 0)).any():
                continue
            placed = (alpha, x, y, box)
            break
        if placed is None:
            continue
        alpha, x, y, box = placed
        ah, aw = alpha.shape
        region = img[y : y + ah, x : x + aw]
        colour = _ink_colour(rng, bg[y : y + ah, x : x + aw].reshape(-1, 3).mean(axis=0))
        a = alpha[..., None]
        img[y : y + ah, x : x + aw] = region * (1 - a) + colour[None, None, :] * a
        boxes = np.vstack([boxes, box])
        _mark(occupied, alpha > 0, x, y, _INK_GAP)
        objects.append(
            {
                "name": digit_name(digit),
                "digit": digit,
                "box": tuple(float(v) for v in box[0]),
                "difficult": False,
                "truncated": False,
                "target": digit == int(target_digit),
            }
        )
    image = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if return_background:
        return image, objects, np.clip(np.rint(bg), 0, 255).astype(np.uint8)
    return image, objects


def _annotation_xml(image_id: str, width: int, height: int, objects: list[dict[str, Any]], folder: str) -> bytes:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = folder
    ET.SubElement(root, "filename").text = f"{image_id}.jpg"
    source = ET.SubElement(root, "source")
    ET.SubElement(source, "database").text = "zoomrl demo (scikit-learn handwritten digits)"
    size = ET.SubElement(root, "size")
    ET.SubElement(size, "width").text = str(width)
    ET.SubElement(size, "height").text = str(height)
    ET.SubElement(size, "depth").text = "3"
    ET.SubElement(root, "segmented").text = "0"
    for obj in objects:
        o = ET.SubElement(root, "object")
        ET.SubElement(o, "name").text = obj["name"]
        ET.SubElement(o, "pose").text = "Unspecified"
        ET.SubElement(o, "truncated").text = str(int(obj["truncated"]))
        ET.SubElement(o, "difficult").text = str(int(obj["difficult"]))
        bb = ET.SubElement(o, "bndbox")
        for tag, v in zip(("xmin", "ymin", "xmax", "ymax"), box_to_voc(obj["box"])):
            ET.SubElement(bb, tag).text = str(v)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8") + b"\n"


def _is_nonempty_dir(path: Path) -> bool:
    return path.exists() and (not path.is_dir() or any(path.iterdir()))


def make_demo_dataset(
    root: str | Path,
    n_trainval: int = 120,
    n_test: int = 40,
    seed: int = 0,
    canvas: tuple[int, int] = (256, 256),
    target_digit: int = 7,
    overwrite: bool = False,
    jpeg_quality: int = 95,
    negative_fraction: float = 0.0,
    max_iou: float = 0.1,
    target_size: tuple[float, float] = (0.18, 0.85),
    targets_p: tuple[float, ...] = (0.7, 0.2, 0.1),
    distractors: tuple[int, int] = (2, 5),
    distractor_size: tuple[float, float] = (0.1, 0.35),
) -> dict[str, Any]:
    """Write the demo data set (Pascal VOC layout, see the module docstring) to ``root``.

    ``canvas`` is ``(width, height)``; the target class is ``DIGIT_NAMES[target_digit]`` (default ``"seven"``).
    A fraction ``negative_fraction`` of the images (default none) holds no target digit. An image holds 1, 2, 3 ...
    targets with probabilities ``targets_p`` and ``distractors`` (inclusive range) other digits; sizes as in
    :func:`render_demo_image`. The set is written to
    ``<root>.tmp-<pid>`` and renamed to ``root`` at the end. Raises ``ValueError`` if ``root`` exists and is not
    empty, unless ``overwrite`` (then it is replaced).

    Returns a summary dict: ``root``, ``class_name``, ``seed``, ``canvas`` and ``splits`` mapping each split
    to ``images``, ``positive_images``, ``objects``, ``target_objects`` and ``objects_per_class``.
    """
    root = Path(root)
    if _is_nonempty_dir(root) and not overwrite:
        raise ValueError(f"{root} exists and is not empty; pass overwrite=True (--overwrite) to replace it")
    if n_trainval < 0 or n_test < 0:
        raise ValueError(f"image counts must be >= 0, received n_trainval={n_trainval}, n_test={n_test}")
    class_name = digit_name(target_digit)
    tmp = root.parent / f"{root.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    summary: dict[str, Any] = {
        "class_name": class_name,
        "target_digit": int(target_digit),
        "seed": int(seed),
        "canvas": [int(canvas[0]), int(canvas[1])],
        "splits": {},
    }
    try:
        for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
            (tmp / sub).mkdir(parents=True, exist_ok=True)
        next_id = 1
        for split, n in (("trainval", n_trainval), ("test", n_test)):
            ids: list[str] = []
            present: list[set[str]] = []
            per_class = {name: 0 for name in DIGIT_NAMES}
            n_objects = 0
            for j in range(int(n)):
                rng = demo_image_rng(seed, split, j)
                n_targets = 0 if negative_fraction > 0 and rng.random() < negative_fraction else None
                if n_targets is None and tuple(targets_p) != (0.7, 0.2, 0.1):
                    n_targets = int(rng.choice(np.arange(1, len(targets_p) + 1), p=np.asarray(targets_p)))
                n_distractors = (
                    None if tuple(distractors) == (2, 5) else int(rng.integers(distractors[0], distractors[1] + 1))
                )
                image, objects = render_demo_image(
                    rng,
                    canvas=canvas,
                    target_digit=target_digit,
                    split=split,
                    n_targets=n_targets,
                    max_iou=max_iou,
                    n_distractors=n_distractors,
                    target_size=target_size,
                    distractor_size=distractor_size,
                )
                image_id = f"{next_id:06d}"
                next_id += 1
                Image.fromarray(image, "RGB").save(
                    tmp / "JPEGImages" / f"{image_id}.jpg", quality=int(jpeg_quality), subsampling=0
                )
                xml = _annotation_xml(image_id, image.shape[1], image.shape[0], objects, folder=VOC_FOLDER)
                (tmp / "Annotations" / f"{image_id}.xml").write_bytes(xml)
                ids.append(image_id)
                present.append({o["name"] for o in objects})
                for o in objects:
                    per_class[o["name"]] += 1
                n_objects += len(objects)
            main = tmp / "ImageSets" / "Main"
            (main / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
            for name in DIGIT_NAMES:
                lines = "".join(f"{i} {1 if name in p else -1:2d}\n" for i, p in zip(ids, present))
                (main / f"{name}_{split}.txt").write_text(lines)
            summary["splits"][split] = {
                "images": len(ids),
                "positive_images": sum(class_name in p for p in present),
                "objects": n_objects,
                "target_objects": per_class[class_name],
                "objects_per_class": per_class,
            }
        info = dict(
            summary,
            class_names=list(DIGIT_NAMES),
            jpeg_quality=int(jpeg_quality),
            negative_fraction=float(negative_fraction),
            max_iou=float(max_iou),
            target_size=list(target_size),
            targets_p=list(targets_p),
            distractors=list(distractors),
            distractor_size=list(distractor_size),
            n_trainval=int(n_trainval),
            n_test=int(n_test),
        )
        (tmp / "demo_info.json").write_text(json.dumps(info, indent=2) + "\n")
        if root.exists():
            if overwrite and _is_nonempty_dir(root):
                old = root.parent / f"{root.name}.old-{os.getpid()}"
                os.replace(root, old)
                if old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    old.unlink()
            elif root.is_dir():
                root.rmdir()  # empty
        try:
            os.replace(tmp, root)
        except OSError as exc:  # someone else created root meanwhile
            raise ValueError(f"{root} appeared while the demo data set was being written ({exc})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary["root"] = str(root)
    return summary


def _is_complete(path: Path) -> bool:
    main = path / "ImageSets" / "Main"
    return (
        (path / "JPEGImages").is_dir()
        and (path / "Annotations").is_dir()
        and all((main / f"{s}.txt").is_file() for s in SPLITS)
    )


DEMO_PROFILE: dict[str, Any] = {
    "n_trainval": 64,
    "n_test": 32,
    "seed": 0,
    "target_size": (0.4, 0.8),
    "targets_p": (0.8, 0.2),
    "distractors": (1, 3),
    "distractor_size": (0.1, 0.25),
}
"""The embedded demo set: small enough that ``scripts/demo.sh`` trains and tests both feature models within
minutes on a CPU, with targets large enough (40-80 % of the side) that the oracle finds them in a median of 4
windows (3/4 hierarchy)."""


def _matches_profile(path: Path) -> bool:
    try:
        info = json.loads((path / "demo_info.json").read_text())
    except (OSError, ValueError):
        return False
    return all(info.get(k) == (list(v) if isinstance(v, tuple) else v) for k, v in DEMO_PROFILE.items())


def ensure_demo_dataset(path: str | Path = DEFAULT_DEMO_DIR) -> Path:
    """Return ``path``, first building the demo data set (:data:`DEMO_PROFILE`) there if it is not already
    present, or was built with other parameters (an older version's)."""
    path = Path(path)
    if _is_complete(path) and _matches_profile(path):
        return path
    why = "not found" if not _is_complete(path) else "built with other parameters"
    print(
        f"demo data set {why} at {path}; building it ({DEMO_PROFILE['n_trainval']} trainval and "
        f"{DEMO_PROFILE['n_test']} test images, seed 0)",
        flush=True,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        make_demo_dataset(path, overwrite=_is_complete(path), **DEMO_PROFILE)
    except ValueError:
        if not _is_complete(path):  # not a concurrent build that finished first
            raise
    return path


def default_data_dir() -> Path:
    """The embedded demo set (built on first use)."""
    return ensure_demo_dataset()


DEV_SPLITS = ("devtrain", "devval")


def make_demo_dev_set(
    root: str | Path, seed: int = 1, n_train: int = 64, n_val: int = 64, overwrite: bool = False
) -> dict[str, Any]:
    """A development set for choosing the demo's recipe without its test split: :data:`DEMO_PROFILE`'s images
    drawn with another ``seed``, all from the *trainval* digit pool (no test handwriting), ``n_train + n_val`` of
    them as ``trainval``, plus the image sets ``devtrain`` (the first ``n_train``) and ``devval`` (the rest). Train
    on ``devtrain``, compare on ``devval``. Written to ``<root>.dev-<pid>`` and renamed at the end; returns
    :func:`make_demo_dataset`'s summary with ``dev`` (the two sets' sizes)."""
    if n_train < 1 or n_val < 1:
        raise ValueError(f"the development set needs n_train >= 1 and n_val >= 1, received {n_train} and {n_val}")
    root = Path(root)
    if _is_nonempty_dir(root) and not overwrite:
        raise ValueError(f"{root} exists and is not empty; pass overwrite=True (--overwrite) to replace it")
    profile = {**DEMO_PROFILE, "seed": int(seed), "n_trainval": int(n_train) + int(n_val), "n_test": 0}
    tmp = root.parent / f"{root.name}.dev-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        summary = make_demo_dataset(tmp, **profile)
        main = tmp / "ImageSets" / "Main"
        ids = (main / "trainval.txt").read_text().split()
        for name, part in zip(DEV_SPLITS, (ids[:n_train], ids[n_train:])):
            (main / f"{name}.txt").write_text("".join(f"{i}\n" for i in part))
        if root.is_dir():
            shutil.rmtree(root)
        elif root.exists():
            root.unlink()
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary["root"] = str(root)
    summary["dev"] = {"devtrain": int(n_train), "devval": int(n_val)}
    return summary
