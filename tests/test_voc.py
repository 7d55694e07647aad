import numpy as np
import pytest
from PIL import Image

from conftest import SHARED, needs_shared, write_voc
from zoomrl.data.voc import DataError, LoadReport, load_dataset, load_rgb, parse_annotation, require_class

XML = """<annotation><filename>a.jpg</filename><size><width>40</width><height>30</height><depth>3</depth></size>
<object><name>cat</name><truncated>1</truncated><difficult>0</difficult>
  <bndbox><xmin>1</xmin><ymin>2</ymin><xmax>10</xmax><ymax>20</ymax></bndbox></object>
<object><name>cat</name><difficult>1</difficult>
  <bndbox><xmin>5</xmin><ymin>5</ymin><xmax>60</xmax><ymax>25</ymax></bndbox></object>
<object><name>dog</name><difficult>0</difficult>
  <bndbox><xmin>8</xmin><ymin>8</ymin><xmax>8</xmax><ymax>12</ymax></bndbox></object>
</annotation>"""


@pytest.fixture
def root(tmp_path):
    for d in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (tmp_path / d).mkdir(parents=True)
    Image.new("RGB", (40, 30)).save(tmp_path / "JPEGImages" / "a.jpg")
    (tmp_path / "Annotations" / "a.xml").write_text(XML)
    (tmp_path / "ImageSets" / "Main" / "cat_trainval.txt").write_text("a  1\n")
    return tmp_path


def test_parse_hand_written_xml(root):
    report = LoadReport()
    im = parse_annotation(root / "Annotations" / "a.xml", root, report)
    assert (im.width, im.height) == (40, 30)
    cats = [o for o in im.objects if o.name == "cat"]
    assert cats[0].box == (0.0, 1.0, 10.0, 20.0) and cats[0].truncated and not cats[0].difficult
    assert cats[1].box == (4.0, 4.0, 40.0, 25.0) and cats[1].difficult  # xmax 60 clipped to the width 40
    # the dog box xmin=xmax=8 is one pixel wide in VOC (7..8), so it is kept
    assert [o.name for o in im.objects] == ["cat", "cat", "dog"]
    assert report.clipped_boxes == 1
    np.testing.assert_array_equal(im.difficult("cat"), [False, True])
    assert im.boxes("cat", include_difficult=False).shape == (1, 4)


def test_degenerate_box_skipped_and_counted(root):
    (root / "Annotations" / "a.xml").write_text(XML.replace("<xmax>10</xmax>", "<xmax>0</xmax>"))
    report = LoadReport()
    im = parse_annotation(root / "Annotations" / "a.xml", root, report)
    assert report.degenerate_boxes == 1 and len(im.objects) == 2


def test_class_split_file_used_and_class_check(root):
    images = load_dataset([root], "trainval", "cat")
    assert [i.image_id for i in images] == ["a"]
    with pytest.raises(DataError, match="classes present: cat, dog"):
        require_class(images, "aeroplane", str(root))


def test_missing_folder_and_set_errors(tmp_path, root):
    with pytest.raises(DataError, match="does not exist.*Annotations/, JPEGImages/"):
        load_dataset([tmp_path / "nope"], "trainval")
    with pytest.raises(DataError, match="no image set 'test'.*available: cat_trainval.txt"):
        load_dataset([root], "test", "cat")


def test_malformed_xml_named_and_skippable(root):
    Image.new("RGB", (40, 30)).save(root / "JPEGImages" / "b.jpg")
    (root / "Annotations" / "b.xml").write_text("<annotation><object>")
    (root / "ImageSets" / "Main" / "trainval.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match="b.xml: malformed annotation XML"):
        load_dataset([root], "trainval")
    report = LoadReport()
    images = load_dataset([root], "trainval", skip_bad=True, report=report)
    assert len(images) == 1 and report.bad_files[0].endswith("b.xml")
    assert "skipped 1 unreadable" in report.summary()


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "RGBA"])
def test_load_rgb_converts_modes(tmp_path, mode):
    path = tmp_path / ("x.png" if mode in ("P", "RGBA", "L") else "x.jpg")
    Image.new(mode, (7, 5)).save(path)
    arr = load_rgb(path)
    assert arr.shape == (5, 7, 3) and arr.dtype == np.uint8


def test_unreadable_image_named(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="bad.jpg: unreadable image"):
        load_rgb(bad)


def test_png_images_found(tmp_path):
    write_voc(tmp_path, [("p1", np.zeros((8, 9, 3), np.uint8), [("box", (1, 1, 5, 5), False, False)])], ext=".png")
    [im] = load_dataset([tmp_path], "trainval")
    assert im.image_path.suffix == ".png" and im.boxes("box").tolist() == [[1, 1, 5, 5]]


@needs_shared
def test_real_raccoon_split():
    root = SHARED / "data" / "raccoon"
    train = load_dataset([root], "trainval", "raccoon")
    test = load_dataset([root], "test", "raccoon")
    assert (len(train), len(test)) == (160, 40)
    assert sum(len(i.boxes("raccoon")) for i in train + test) == 217
    first = next(i for i in train if i.image_id == "raccoon-1")
    # raccoon-1.xml: xmin 81 ymin 88 xmax 522 ymax 408 (1-based inclusive) in a 650 x 417 image
    assert first.boxes("raccoon").tolist() == [[80.0, 87.0, 522.0, 408.0]]
    assert (first.width, first.height) == (650, 417)


@needs_shared
def test_real_voc_sample_difficult_and_classes():
    root = SHARED / "data" / "voc2012-sample"
    images = load_dataset([root], "test")
    assert len(images) == 100
    assert sum(len(i.objects) for i in images) == 273
    assert sum(o.difficult for i in images for o in i.objects) == 38
    assert sum(1 for i in images if any(o.name == "aeroplane" for o in i.objects)) == 10
    combined = load_dataset([root, SHARED / "data" / "raccoon"], "test")
    assert len(combined) == 140 and len({i.key for i in combined}) == 140
