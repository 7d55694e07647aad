"""Issue 22, "wrong data never passes in silence": pixel depth, image size, class names, cache identity, the run
folder, damaged run state in every family, the sweep's checks, the glimpse size and what --skip-bad left out.
Each test compares with values worked out by hand or by a plain reference, and failed before the fix."""

import json
import os
import re
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from conftest import TinyFeatures, fake_backbone, square_task, write_voc
from zoomrl.core.checkpoint import (
    PREVIOUS,
    Checkpointer,
    RunLock,
    read_latest,
    read_state,
    restore_previous_run,
    stash_previous_run,
)
from zoomrl.core.io import FileDamagedError
from zoomrl.data.images import ImageStore, class_objects, load_images
from zoomrl.data.voc import DataError, LoadReport, load_dataset, load_rgb, parse_annotation, to_rgb8
from zoomrl.experiments.common import run_guarded


def _obj(name="box", box=(4, 4, 20, 16)):
    return (name, box, False, False)


# 1. Pixel depth: every Pillow mode to 8-bit RGB by its mode's range ---------------------------------------------


def test_sixteen_bit_png_is_scaled_by_its_range_not_clipped(tmp_path):
    values = np.array([[0, 257, 257 * 100], [257 * 200, 65535, 32768]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    rgb = load_rgb(tmp_path / "g16.png")
    # 257 * k is exactly k in 8 bits; 32768 * 255 / 65535 = 127.5019..., rounded to 128
    expected = np.array([[0, 1, 100], [200, 255, 128]], dtype=np.uint8)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 3, 3)
    assert (rgb == expected[..., None]).all()  # it was all 255


def _modes():
    """(image, expected RGB of pixel (0, 0)) for every mode a photo can come in; worked out by hand."""
    rgba = Image.new("RGBA", (2, 2), (200, 100, 0, 128))  # 128/255 of the colour over white
    a = 128 / 255
    over_white = tuple(int(round(c * a + 255 * (1 - a))) for c in (200, 100, 0))
    pal = Image.new("P", (2, 2), 1)
    pal.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    pa = Image.new("PA", (2, 2), (1, 0))
    pa.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    grey_trns = Image.new("L", (2, 2), 77)
    grey_trns.info["transparency"] = 77
    return [
        (Image.new("1", (2, 2), 1), (255, 255, 255)),
        (Image.new("L", (2, 2), 77), (77, 77, 77)),
        (Image.new("LA", (2, 2), (77, 0)), (255, 255, 255)),  # fully transparent: white, not the hidden grey
        (pal, (10, 20, 30)),
        (pa, (255, 255, 255)),
        (rgba, over_white),
        (Image.new("CMYK", (2, 2), (0, 0, 0, 0)), (255, 255, 255)),
        (Image.new("CMYK", (2, 2), (0, 255, 0, 0)), (255, 0, 255)),
        (grey_trns, (255, 255, 255)),
        (Image.fromarray(np.full((2, 2), 257 * 50, np.int32)), (50, 50, 50)),  # mode I holding 16-bit values
        (Image.fromarray(np.full((2, 2), 0.5, np.float32)), (128, 128, 128)),  # F in 0-1: 127.5 rounds to 128
        (Image.fromarray(np.full((2, 2), 77.0, np.float32)), (77, 77, 77)),  # F in 0-255 (Pillow's L to F)
    ]


@pytest.mark.parametrize("index", range(12))
def test_every_pillow_mode_decodes_to_8_bit_rgb(index, tmp_path):
    image, expected = _modes()[index]
    rgb = to_rgb8(image, tmp_path / "x")
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 2, 3), image.mode
    assert tuple(int(v) for v in rgb[0, 0]) == expected, image.mode


@pytest.mark.parametrize(
    "array, match",
    [
        (np.full((2, 2), -5, np.int32), r"I image with values -5 to -5; expected 8- or 16-bit"),
        (np.full((2, 2), 70000, np.int32), r"values 70000 to 70000"),
        (np.full((2, 2), 300.0, np.float32), r"floating-point image with values 300 to 300; expected 0-1 or 0-255"),
        (np.full((2, 2), np.nan, np.float32), r"floating-point image"),
    ],
)
def test_pixels_without_a_known_range_are_one_line(array, match, tmp_path):
    with pytest.raises(DataError, match=match) as info:
        to_rgb8(Image.fromarray(array), tmp_path / "odd.tif")
    assert str(info.value).startswith(str(tmp_path / "odd.tif"))


def test_one_bit_png_through_the_data_set(tmp_path):
    bits = np.zeros((32, 48), bool)
    bits[8:24, 10:30] = True
    root = write_voc(tmp_path / "voc", [("im0", np.zeros((32, 48, 3), np.uint8), [_obj()])], ext=".png")
    Image.fromarray(bits).save(root / "JPEGImages" / "im0.png")
    (image,) = load_images([root], "trainval", "box", False, None, print)
    rgb = ImageStore().get(image)
    assert (rgb[..., 0] == np.where(bits, 255, 0)).all()


# 2. An annotated size that is not the image's ---------------------------------------------------------------------


def _sized(tmp_path, xml_size, exif_orientation=None):
    """A 48x32 (width x height) JPEG whose XML says ``xml_size``."""
    pixels = np.random.default_rng(0).integers(0, 255, (32, 48, 3)).astype(np.uint8)
    root = write_voc(
        tmp_path / "voc", [("im0", pixels, [_obj(box=(8, 4, 24, 20))]), ("im1", pixels, [_obj(box=(8, 4, 24, 20))])]
    )
    xml = root / "Annotations" / "im0.xml"
    xml.write_text(
        xml.read_text().replace(
            "<width>48</width><height>32</height>", f"<width>{xml_size[0]}</width><height>{xml_size[1]}</height>"
        )
    )
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        Image.fromarray(pixels).save(root / "JPEGImages" / "im0.jpg", exif=exif, quality=95)
    return root, xml


def test_swapped_width_and_height_is_an_error_naming_both_sizes(tmp_path):
    root, xml = _sized(tmp_path, (32, 48))
    with pytest.raises(DataError) as info:
        load_images([root], "trainval", "box", False, None, print)
    text = str(info.value)
    assert text.startswith(f"{xml}: <size> says 32x48 (width x height)")
    assert "im0.jpg is 48x32; width and height are swapped" in text and "\n" not in text
    # decoding without the check refuses too, rather than rescaling the boxes to another place
    image = parse_annotation(xml, root)
    with pytest.raises(DataError, match="says 32x48"):
        class_objects(image, load_rgb(image.image_path), "box")


def test_swapped_size_skipped_and_recorded_with_skip_bad(tmp_path):
    root, xml = _sized(tmp_path, (32, 48))
    lines, report = [], LoadReport()
    images = load_images([root], "trainval", "box", True, None, lines.append, report=report)
    assert [im.image_id for im in images] == ["im1"]
    assert lines == [f"data: skipped 1 image(s) whose annotated size is not theirs (first: {xml})"]
    assert report.skipped_record("box")["objects"] == 1


def test_uniform_scale_still_rescales(tmp_path):
    root, _ = _sized(tmp_path, (96, 64))  # annotated on a copy twice as large
    image = load_images([root], "trainval", "box", False, None, print)[0]
    boxes, _ = class_objects(image, load_rgb(image.image_path), "box")
    # the box (8, 4, 24, 20) was read on the 96x64 size (clipped there), then halved to the real 48x32
    assert boxes.tolist() == [[4.0, 2.0, 12.0, 10.0]]


def test_exif_rotated_photo_annotated_as_shown_names_the_orientation(tmp_path):
    root, _ = _sized(tmp_path, (32, 48), exif_orientation=6)
    with pytest.raises(DataError, match=r"EXIF orientation 6 turns it by 90 degrees"):
        load_images([root], "trainval", "box", False, None, print)


# 3. Class names in another case --------------------------------------------------------------------------------


def test_class_names_match_in_any_case_in_training_and_testing(tmp_path):
    rng = np.random.default_rng(1)
    items = [
        (f"im{i}", rng.integers(0, 255, (32, 48, 3)).astype(np.uint8), [_obj(name)])
        for i, name in enumerate(["Raccoon", "raccoon", "RACCOON"])
    ]
    root = write_voc(tmp_path / "voc", items)
    lines = []
    images = load_images([root], "trainval", "raccoon", False, None, lines.append)
    # every object counts in the ground truth (the test used to see 1 instead of 3) ...
    assert sum(len(class_objects(im, load_rgb(im.image_path), "raccoon")[0]) for im in images) == 3
    # ... and one line says that the spelling differed
    assert lines == [
        "data: class 'raccoon' matched without regard to case: 'RACCOON' (1 object(s)), 'Raccoon' (1 object(s))"
    ]


# 4. Cache identity ---------------------------------------------------------------------------------------------


def _two_roots(tmp_path):
    """a/VOC and b/VOC: same folder name, same id, different pixels."""
    roots = []
    for name, value in (("a", 30), ("b", 220)):
        roots.append(write_voc(tmp_path / name / "VOC", [("im0", np.full((64, 64, 3), value, np.uint8), [_obj()])]))
    return roots


def _describe(cache_dir, images):
    from zoomrl.vision.features import Pool45Crops, Request

    model = Pool45Crops(fake_backbone, "fp", cache_dir=cache_dir, log=lambda m: None)
    store = ImageStore()
    out = model.describe([Request(im.key, (), store.get(im), (0.0, 0.0, 64.0, 64.0)) for im in images])
    stats = model.stats()
    model.close()
    return out, stats


def test_same_folder_name_and_id_never_share_pixels_or_features(tmp_path):
    roots = _two_roots(tmp_path)
    images = load_images(roots, "trainval", "box", False, None, print)
    assert images[0].key != images[1].key
    store = ImageStore()
    assert store.get(images[0])[0, 0, 0] == 30 and store.get(images[1])[0, 0, 0] == 220  # was 30 twice
    together, stats = _describe(None, images)
    assert stats["backbone_images"] == 2
    alone, _ = _describe(None, images[1:])
    np.testing.assert_array_equal(together[1], alone[0])


def test_disk_cache_across_runs_and_an_image_replaced_in_place(tmp_path):
    roots = _two_roots(tmp_path)
    cache = tmp_path / "cache"
    a = load_images(roots[:1], "trainval", "box", False, None, print)
    _describe(cache, a)
    b = load_images(roots[1:], "trainval", "box", False, None, print)
    out_b, stats = _describe(cache, b)  # another run, the other folder: nothing of a's may be served
    assert stats["disk_hits"] == 0 and stats["backbone_images"] == 1
    np.testing.assert_array_equal(out_b, _describe(None, b)[0])
    # replace a's image in place (same id, same path, new pixels), then a later run
    path = a[0].image_path
    Image.fromarray(np.full((64, 64, 3), 140, np.uint8)).save(path, quality=95)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = load_images(roots[:1], "trainval", "box", False, None, print)
    out, stats = _describe(cache, again)
    assert stats["disk_hits"] == 0 and stats["backbone_images"] == 1  # the old features were served before
    np.testing.assert_array_equal(out, _describe(None, again)[0])
    _, stats = _describe(cache, again)  # and the cache still works for what did not change
    assert stats["disk_hits"] == 1 and stats["backbone_images"] == 0


def test_old_cache_layout_keyed_by_folder_name_is_discarded(tmp_path):
    from zoomrl.vision.cache import DiskCache

    path = tmp_path / "c.h5"
    with DiskCache(path, {"variant": "v"}) as c:
        c.file.attrs["format"] = "2"
    lines = []
    DiskCache(path, {"variant": "v"}, lines.append).close()
    assert len(lines) == 1 and "'format': '2'" in lines[0] and "discarding it" in lines[0]


# 5, 6. The run folder: previous_run/ holds all of the old run and is never lost ------------------------------------


def _finished_run(run):
    ck = Checkpointer(run, keep=2)
    (run / "tensorboard").mkdir(parents=True)
    (run / "tensorboard" / "events.out.tfevents.1.old").write_text("old events")
    for epoch in (1, 2):
        ck.save(
            epoch, {"weights.h5": lambda p, e=epoch: p.write_text(f"w{e}")}, {"state.npz": lambda p: p.write_text("s")}
        )
    return run


def test_new_run_moves_the_old_runs_tensorboard_too(tmp_path):
    run = _finished_run(tmp_path / "run")
    lines = []
    with RunLock(run):
        stash_previous_run(run, lines.append)
        assert not (run / "tensorboard").exists()  # it stayed beside the new run's events
        assert (run / PREVIOUS / "tensorboard" / "events.out.tfevents.1.old").read_text() == "old events"
        assert "waits in" in lines[0] and "deleted when this run's first epoch is saved" in lines[0]
        (run / "tensorboard").mkdir()
        Checkpointer(run).save(1, {"weights.h5": lambda p: p.write_text("new")})
        assert not (run / PREVIOUS).exists()  # the first saved epoch ends the old run's wait


def test_new_run_stopped_before_its_first_epoch_gives_the_folder_back(tmp_path):
    run = _finished_run(tmp_path / "run")
    before = sorted(p.name for p in run.iterdir() if p.name != ".lock")
    lines = []
    with pytest.raises(KeyboardInterrupt):
        with RunLock(run, log=lines.append):
            stash_previous_run(run, lambda m: None)
            (run / "tensorboard").mkdir()
            (run / "tensorboard" / "events.new").write_text("new")
            (run / "config.json").write_text("{}")  # a family that writes its config first (glimpse)
            raise KeyboardInterrupt
    assert sorted(p.name for p in run.iterdir() if p.name != ".lock") == before
    assert read_latest(run)["epoch"] == 2 and (run / "epoch_2.weights.h5").read_text() == "w2"
    assert (run / "tensorboard" / "events.out.tfevents.1.old").is_file() and not (run / "config.json").exists()
    assert lines == [f"note: restored the earlier run in {run} from previous_run/ (the new run saved no epoch)"]


def test_old_run_left_by_a_killed_new_run_is_restored_by_the_next_and_named_by_test(tmp_path):
    from zoomrl.experiments.dqn_test import resolve_checkpoint

    run = _finished_run(tmp_path / "box")
    stash_previous_run(run, lambda m: None)  # then kill -9: nothing ran the restore
    with pytest.raises(FileNotFoundError, match=r"an earlier run waits in .*box/previous_run"):
        resolve_checkpoint(None, tmp_path, "box")
    with RunLock(run, log=lambda m: None):  # any later run, fresh or --resume, finds the old run in place
        assert read_latest(run)["epoch"] == 2 and not (run / PREVIOUS).exists()
    assert not restore_previous_run(run, print)  # nothing left to restore


@pytest.fixture(scope="module")
def squares(tmp_path_factory):
    root = tmp_path_factory.mktemp("sq")
    write_voc(root, square_task(4, seed=0), image_set="trainval")
    (root / "ImageSets" / "Main" / "test.txt").write_text("sq000\nsq001\nsq002\nsq003\n")
    return root


def _hier_train(data, models, features=None, **kw):
    from zoomrl.experiments.hierarchical.config import make_config
    from zoomrl.experiments.hierarchical.train import train

    values = dict(class_object="box", hidden_units=16, number_of_steps=3, epochs=1, minibatch=8, learning_starts=8)
    values.update({k: v for k, v in kw.items() if k != "resume"})
    return train(
        make_config("tiny", **values),
        [data],
        "trainval",
        models,
        features=features or TinyFeatures(),
        log=lambda m: None,
        show_progress=False,
        resume=kw.get("resume", False),
    )


class _CtrlC(TinyFeatures):
    def describe(self, requests):
        raise KeyboardInterrupt


def test_ctrl_c_on_a_new_hierarchical_run_then_resume_continues_the_old_one(squares, tmp_path):
    models = tmp_path / "models"
    _hier_train(squares, models)
    weights = (models / "box" / "epoch_1.weights.h5").read_bytes()
    with pytest.raises(KeyboardInterrupt):
        _hier_train(squares, models, features=_CtrlC())  # a new run, Ctrl-C during its first epoch
    assert read_latest(models / "box")["epoch"] == 1 and not (models / "box" / PREVIOUS).exists()
    assert (models / "box" / "epoch_1.weights.h5").read_bytes() == weights
    out = _hier_train(squares, models, epochs=2, resume=True)  # as the interrupt line advises
    assert [h["epoch"] for h in out["history"]] == [1, 2]


# 7. A damaged run state, in every family ---------------------------------------------------------------------------


def _state(path):
    with open(path, "wb") as f:
        np.savez(f, a=np.arange(1000, dtype=np.int64), agents=np.array(1))
    return path


def _damage(path, how):
    data = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        path.write_bytes(b"not a zip at all" * 10)
    else:  # a member whose bytes changed: its CRC fails when it is read
        with zipfile.ZipFile(path) as z:
            offset = z.getinfo("a.npy").header_offset + 30 + len("a.npy") + 200
        path.write_bytes(data[:offset] + bytes(b ^ 0xFF for b in data[offset : offset + 16]) + data[offset + 16 :])


DAMAGES = ["empty", "truncated", "garbage", "crc"]


@pytest.mark.parametrize("how", DAMAGES)
def test_core_reader_names_every_kind_of_damage(tmp_path, how):
    path = _state(tmp_path / "training_state.npz")
    assert read_state(path)["a"].sum() == 499500
    _damage(path, how)
    with pytest.raises(FileDamagedError, match="damaged or truncated training state") as info:
        read_state(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)
    with pytest.raises(FileNotFoundError, match="no such training state"):
        read_state(tmp_path / "none.npz")


@pytest.mark.parametrize("how", DAMAGES)
def test_glimpse_and_patchdrop_resume_with_a_damaged_state_is_one_line(tmp_path, how, capsys):
    from zoomrl.experiments.glimpse.config import make_config as glimpse_config
    from zoomrl.experiments.glimpse.train import train as glimpse_train
    from zoomrl.experiments.patchdrop.config import make_config
    from zoomrl.experiments.patchdrop.train import train as patchdrop_train

    run = tmp_path / "ram"
    Checkpointer(run).save(1, {"weights.h5": lambda p: p.write_text("w")})
    _damage(_state(run / "training_state.npz"), how)
    glimpse, patchdrop = glimpse_config("tiny", models="ram"), make_config("tiny")
    for family, cfg, call in (
        ("glimpse", glimpse, lambda: glimpse_train(glimpse, tmp_path, resume=True, quiet=True, log=print)),
        ("patchdrop", patchdrop, lambda: patchdrop_train(patchdrop, run, resume=True, quiet=True, log=print)),
    ):
        cfg.save(run / "config.json")  # both resume through the run driver, which reads it before the state
        assert run_guarded(call) == 2, family  # BadZipFile was a traceback
        err = capsys.readouterr().err
        assert err.startswith(f"error: {run / 'training_state.npz'}: damaged or truncated training state"), family
        assert err.count("\n") == 1


# 8. The sweep checks data, sets and classes before Ray ------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--classes", "cat"], r"class 'cat' has no object in image set 'trainval' of .*; classes present: box"),
        (["--classes", "box", "--test-set", "nosuch"], r"no image set 'nosuch'"),
        (["--classes", "box", "--no-such-flag", "1"], r"--no-such-flag: not a flag"),
    ],
)
def test_sweep_refuses_bad_classes_and_sets_before_ray(squares, extra, match, monkeypatch, capsys):
    import sys

    from zoomrl.experiments.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # importing Ray now fails: the check must come first
    code = main(["sweep", "hierarchical", "--data", str(squares), "--preset", "tiny", "--weights", "none", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert re.search(match, err[0]) and "Ray" not in err[0], err


def test_sweep_check_passes_good_data_in_any_case(squares, monkeypatch, capsys):
    import sys

    from zoomrl.experiments.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)
    code = main(["sweep", "hierarchical", "--data", str(squares), "--classes", "BOX", "--weights", "none"])
    assert code == 2 and "needs Ray Tune" in capsys.readouterr().err  # got as far as Ray


# 9. A glimpse not smaller than the canvas ---------------------------------------------------------------------------


def test_glimpse_larger_than_the_canvas_is_said_in_one_line(tmp_path, monkeypatch):
    from zoomrl.experiments.glimpse import train as gtrain
    from zoomrl.experiments.glimpse.config import make_config

    monkeypatch.setattr(gtrain, "train_model", lambda name, *a, **k: {"model": name})  # no training needed
    lines = []
    gtrain.train(make_config("tiny", glimpse_size=100, models="ram"), tmp_path, log=lines.append)
    assert lines[0] == (
        "warning: --glimpse-size 100 is not smaller than the 60-pixel canvas: a glimpse at the centre "
        "sees the whole image, so where the model looks hardly matters (expected under 60)"
    )
    lines.clear()
    gtrain.train(make_config("tiny", glimpse_size=12, models="ram"), tmp_path, log=lines.append)
    assert not any(line.startswith("warning") for line in lines)


# 10. What --skip-bad left out is in results.json -------------------------------------------------------------------


def test_skipped_images_and_their_objects_are_in_results_json(squares, tmp_path):
    from zoomrl.experiments.hierarchical.config import make_config
    from zoomrl.experiments.hierarchical.test import test as run_test

    models = tmp_path / "models"
    _hier_train(squares, models)
    data = tmp_path / "data"
    shutil.copytree(squares, data)
    pixels = np.zeros((64, 64, 3), np.uint8)
    write_voc(
        data,
        [
            ("two", pixels, [_obj(box=(1, 1, 20, 20)), _obj(box=(30, 30, 60, 60)), _obj("cat")]),
            ("bad", pixels, [_obj()]),
        ],
        image_set="extra",
    )
    (data / "JPEGImages" / "two.jpg").write_bytes(b"")  # undecodable, its XML holds 2 boxes
    (data / "Annotations" / "bad.xml").write_text("<annotation><object>")  # malformed: objects unknown
    (data / "ImageSets" / "Main" / "test.txt").write_text("sq000\ntwo\nsq001\nbad\n")
    cfg = make_config("tiny", class_object="box", hidden_units=16, number_of_steps=3)
    run_test(
        cfg,
        [data],
        "test",
        None,
        tmp_path / "out",
        model_dir=models,
        skip_bad=True,
        features=TinyFeatures(),
        log=lambda m: None,
        show_progress=False,
        baselines=False,
    )
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    skipped = results["skipped"]
    assert results["n_images"] == 2
    assert (skipped["images"], skipped["objects"], skipped["objects_unknown"]) == (2, 2, 1)
    assert [f["objects"] for f in skipped["files"]] == [2, None]
    assert skipped["files"][0]["file"] == str(data / "JPEGImages" / "two.jpg")
    assert skipped["files"][1]["file"] == str(data / "Annotations" / "bad.xml")


# Other cases of the same kinds --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_box_coordinate_is_one_line(tmp_path, value):
    root = write_voc(tmp_path / "voc", [("im0", np.zeros((32, 48, 3), np.uint8), [_obj()])])
    xml = root / "Annotations" / "im0.xml"
    xml.write_text(xml.read_text().replace("<xmax>20</xmax>", f"<xmax>{value}</xmax>"))
    with pytest.raises(DataError, match=rf"{xml}: object 'box' has a non-finite box coordinate"):
        load_dataset([root], "trainval")  # a NaN box used to pass every check and enter the ground truth


def test_an_id_listed_twice_counts_once_and_is_said(tmp_path):
    rng = np.random.default_rng(2)
    root = write_voc(
        tmp_path / "voc", [(f"im{i}", rng.integers(0, 255, (32, 48, 3)).astype(np.uint8), [_obj()]) for i in range(2)]
    )
    (root / "ImageSets" / "Main" / "trainval.txt").write_text("im0\nim1\nim0\n")
    lines = []
    images = load_images([root], "trainval", "box", False, None, lines.append)
    assert [im.image_id for im in images] == ["im0", "im1"]  # its objects counted twice in the AP before
    assert lines == [f"data: ignored 1 id(s) listed twice in the image set (first: {root}/im0)"]
