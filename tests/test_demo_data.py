"""Tests of the synthetic demo data set (zoomrl.data.demo)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zoomrl.core.geometry import iou_matrix, voc_to_box
from zoomrl.data.demo import (
    DIGIT_NAMES,
    demo_image_rng,
    ensure_demo_dataset,
    make_demo_dataset,
    make_demo_dev_set,
    render_demo_image,
)


def _read_objects(xml_path: Path) -> tuple[int, int, list[tuple[str, tuple[float, float, float, float], dict]]]:
    root = ET.parse(xml_path).getroot()
    width = int(root.findtext("size/width"))
    height = int(root.findtext("size/height"))
    assert root.findtext("size/depth") == "3"
    objs = []
    for o in root.findall("object"):
        bb = o.find("bndbox")
        voc = tuple(int(bb.findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax"))
        fields = {t: o.findtext(t) for t in ("pose", "truncated", "difficult")}
        objs.append((o.findtext("name"), voc, fields))
    return width, height, objs


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "set"
    summary = make_demo_dataset(root, n_trainval=6, n_test=3, seed=5)
    return root, summary


def test_layout(tiny):
    root, summary = tiny
    main = root / "ImageSets" / "Main"
    trainval = main.joinpath("trainval.txt").read_text().split()
    test = main.joinpath("test.txt").read_text().split()
    assert len(trainval) == 6 and len(test) == 3 and not set(trainval) & set(test)
    for image_id in trainval + test:
        assert (root / "JPEGImages" / f"{image_id}.jpg").is_file()
        assert (root / "Annotations" / f"{image_id}.xml").is_file()
    assert summary["class_name"] == "seven"
    assert summary["splits"]["trainval"]["images"] == 6
    assert summary["splits"]["test"]["images"] == 3
    for split, ids in (("trainval", trainval), ("test", test)):
        for name in DIGIT_NAMES:
            lines = main.joinpath(f"{name}_{split}.txt").read_text().splitlines()
            assert [ln.split()[0] for ln in lines] == ids
            for ln, image_id in zip(lines, ids):
                flag = int(ln.split()[1])
                names = {o[0] for o in _read_objects(root / "Annotations" / f"{image_id}.xml")[2]}
                assert flag == (1 if name in names else -1)
        # every image holds the target class (negative_fraction defaults to 0)
        assert all(ln.endswith("  1") for ln in main.joinpath(f"seven_{split}.txt").read_text().splitlines())
    n_target = sum(
        o[0] == "seven" for image_id in trainval for o in _read_objects(root / "Annotations" / f"{image_id}.xml")[2]
    )
    assert n_target == summary["splits"]["trainval"]["target_objects"] >= 6


def test_xml_one_based_within_image(tiny):
    root, _ = tiny
    for xml_path in sorted((root / "Annotations").glob("*.xml")):
        width, height, objs = _read_objects(xml_path)
        tree = ET.parse(xml_path).getroot()
        assert tree.findtext("filename") == xml_path.stem + ".jpg"
        with Image.open(root / "JPEGImages" / f"{xml_path.stem}.jpg") as im:
            assert im.size == (width, height) and im.mode == "RGB"
        assert objs
        for name, (xmin, ymin, xmax, ymax), fields in objs:
            assert name in DIGIT_NAMES
            assert 1 <= xmin <= xmax <= width and 1 <= ymin <= ymax <= height
            assert fields["difficult"] == "0" and fields["truncated"] == "0" and fields["pose"]


def _check_tight(image: np.ndarray, background: np.ndarray, objects: list[dict]) -> None:
    """Each target's box is the tight box of the pixels its ink changed: every border row/column of the box holds
    a changed pixel, and the ring just outside the box is untouched background (except where another object's
    box lies)."""
    height, width = image.shape[:2]
    changed = np.any(image != background, axis=-1)
    for k, obj in enumerate(objects):
        if not obj["target"]:
            continue
        x1, y1, x2, y2 = (int(v) for v in obj["box"])
        assert obj["box"] == (x1, y1, x2, y2)
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        others = np.zeros((height, width), bool)
        for j, other in enumerate(objects):
            if j != k:
                ox1, oy1, ox2, oy2 = (int(v) for v in other["box"])
                others[oy1:oy2, ox1:ox2] = True
        inside = changed[y1:y2, x1:x2] & ~others[y1:y2, x1:x2]
        # ink touches all four sides (no digit is painted over another one's ink)
        for edge in (changed[y1, x1:x2], changed[y2 - 1, x1:x2], changed[y1:y2, x1], changed[y1:y2, x2 - 1]):
            assert edge.any()
        assert inside.sum() > 0.1 * (x2 - x1) * (y2 - y1)
        # just outside each side: background
        ring = []
        if y1 > 0:
            ring.append((changed[y1 - 1, x1:x2], others[y1 - 1, x1:x2]))
        if y2 < height:
            ring.append((changed[y2, x1:x2], others[y2, x1:x2]))
        if x1 > 0:
            ring.append((changed[y1:y2, x1 - 1], others[y1:y2, x1 - 1]))
        if x2 < width:
            ring.append((changed[y1:y2, x2], others[y1:y2, x2]))
        for line, cover in ring:
            assert not (line & ~cover).any()


def test_render_boxes_are_tight_ink_boxes():
    n_targets = 0
    for i in range(12):
        rng = np.random.default_rng(100 + i)
        canvas = (256, 256) if i % 2 else (320, 200)
        image, objects, background = render_demo_image(rng, canvas=canvas, return_background=True)
        assert image.shape == (canvas[1], canvas[0], 3) and image.dtype == np.uint8
        assert objects[0]["target"] and objects[0]["name"] == "seven"
        assert all(o["name"] == DIGIT_NAMES[o["digit"]] for o in objects)
        assert all(o["target"] == (o["digit"] == 7) for o in objects)
        boxes = np.array([o["box"] for o in objects])
        iou = iou_matrix(boxes, boxes)
        np.fill_diagonal(iou, 0)
        assert iou.max() <= 0.1 + 1e-9
        # outside every object box the image is the background
        covered = np.zeros(image.shape[:2], bool)
        for o in objects:
            x1, y1, x2, y2 = (int(v) for v in o["box"])
            covered[y1:y2, x1:x2] = True
        assert np.array_equal(image[~covered], background[~covered])
        _check_tight(image, background, objects)
        n_targets += sum(o["target"] for o in objects)
    assert n_targets >= 12


def test_sizes_vary():
    sides = []
    for i in range(40):
        _, objects = render_demo_image(np.random.default_rng(i))
        sides += [max(o["box"][2] - o["box"][0], o["box"][3] - o["box"][1]) for o in objects if o["target"]]
    assert min(sides) < 60 and max(sides) > 150


def test_saved_annotations_match_render(tiny):
    root, _ = tiny
    ids = (root / "ImageSets" / "Main" / "trainval.txt").read_text().split()
    for j in (0, 3):
        image, objects = render_demo_image(demo_image_rng(5, "trainval", j), split="trainval")
        _, _, saved = _read_objects(root / "Annotations" / f"{ids[j]}.xml")
        assert [s[0] for s in saved] == [o["name"] for o in objects]
        assert [voc_to_box(*s[1]) for s in saved] == [o["box"] for o in objects]
        with Image.open(root / "JPEGImages" / f"{ids[j]}.jpg") as im:
            jpeg = np.asarray(im.convert("RGB"), dtype=np.float64)
        assert np.abs(jpeg - image).mean() < 4.0


def test_same_seed_same_files(tmp_path, tiny):
    root, _ = tiny
    again = tmp_path / "again"
    make_demo_dataset(again, n_trainval=6, n_test=3, seed=5)
    files = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    files2 = sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert files == files2
    for rel in files:
        assert (root / rel).read_bytes() == (again / rel).read_bytes(), rel
    other = tmp_path / "other"
    make_demo_dataset(other, n_trainval=2, n_test=0, seed=6)
    ids = (root / "ImageSets" / "Main" / "trainval.txt").read_text().split()
    assert (other / "JPEGImages" / f"{ids[0]}.jpg").read_bytes() != (root / "JPEGImages" / f"{ids[0]}.jpg").read_bytes()


def test_existing_root(tmp_path):
    root = tmp_path / "busy"
    root.mkdir()
    (root / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        make_demo_dataset(root, n_trainval=1, n_test=1)
    assert (root / "keep.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]  # no leftover temporary folder
    make_demo_dataset(root, n_trainval=1, n_test=1, overwrite=True)
    assert not (root / "keep.txt").exists()
    assert (root / "ImageSets" / "Main" / "trainval.txt").read_text().split() == ["000001"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]
    empty = tmp_path / "empty"
    empty.mkdir()
    make_demo_dataset(empty, n_trainval=1, n_test=1)  # an empty folder is fine
    assert (empty / "Annotations" / "000002.xml").is_file()


def test_ensure_demo_dataset(tmp_path, capsys, monkeypatch):
    import zoomrl.data.demo as dd

    calls = []
    real_make = dd.make_demo_dataset

    def fake_make(path, **kwargs):
        calls.append(Path(path))
        return real_make(path, **kwargs)

    monkeypatch.setattr(dd, "make_demo_dataset", fake_make)
    small = {**dd.DEMO_PROFILE, "n_trainval": 2, "n_test": 1}
    monkeypatch.setattr(dd, "DEMO_PROFILE", small)
    target = tmp_path / "data" / "demo"
    assert ensure_demo_dataset(target) == target
    assert calls == [target]
    assert "not found" in capsys.readouterr().out
    info = json.loads((target / "demo_info.json").read_text())
    assert info["n_trainval"] == 2 and info["target_size"] == list(small["target_size"])
    assert ensure_demo_dataset(target) == target  # present: nothing rebuilt, nothing printed
    assert calls == [target]
    assert capsys.readouterr().out == ""
    monkeypatch.setattr(dd, "DEMO_PROFILE", {**small, "n_test": 2})  # a newer profile: rebuilt, and said
    assert ensure_demo_dataset(target) == target
    assert calls == [target, target] and "built with other parameters" in capsys.readouterr().out
    assert len((target / "ImageSets" / "Main" / "test.txt").read_text().split()) == 2


def test_demo_dev_set_is_the_demo_profile_on_trainval_handwriting_split_in_two(tmp_path):
    import zoomrl.data.demo as dd

    root = tmp_path / "dev"
    summary = make_demo_dev_set(root, seed=1, n_train=3, n_val=2)
    main = root / "ImageSets" / "Main"
    ids = main.joinpath("trainval.txt").read_text().split()
    assert main.joinpath("devtrain.txt").read_text().split() == ids[:3]
    assert main.joinpath("devval.txt").read_text().split() == ids[3:] and len(ids) == 5
    assert main.joinpath("test.txt").read_text() == ""  # no image drawn from the test handwriting
    assert summary["dev"] == {"devtrain": 3, "devval": 2}
    info = json.loads((root / "demo_info.json").read_text())
    for key in ("target_size", "targets_p", "distractors", "distractor_size"):
        assert info[key] == list(dd.DEMO_PROFILE[key]), key
    assert info["seed"] == 1
    # The same images as the plain call with the demo's profile at seed 1 (the demo itself is seed 0).
    reference = tmp_path / "reference"
    make_demo_dataset(reference, **{**dd.DEMO_PROFILE, "seed": 1, "n_trainval": 5, "n_test": 0})
    for i in ids:
        assert (root / "JPEGImages" / f"{i}.jpg").read_bytes() == (reference / "JPEGImages" / f"{i}.jpg").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev", "reference"]  # no temporary folder left
    with pytest.raises(ValueError, match="not empty"):
        make_demo_dev_set(root, n_train=1, n_val=1)
    make_demo_dev_set(root, n_train=1, n_val=1, overwrite=True)
    assert main.joinpath("devval.txt").read_text().split() == ["000002"]
    with pytest.raises(ValueError, match="n_val >= 1"):
        make_demo_dev_set(tmp_path / "none", n_train=2, n_val=0)


def test_make_demo_dataset_script_writes_the_dev_set(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_demo", Path(__file__).parents[1] / "scripts" / "make_demo_dataset.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--dev", "--output", str(tmp_path / "dev"), "--n-trainval", "4"]) == 0
    assert "devtrain 2 and devval 2 images (seed 1" in capsys.readouterr().out
    assert len((tmp_path / "dev" / "ImageSets" / "Main" / "devval.txt").read_text().split()) == 2
    assert script.main(["--dev", "--output", str(tmp_path / "dev"), "--n-trainval", "4"]) == 2  # exists
    assert "not empty" in capsys.readouterr().err
