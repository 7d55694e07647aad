"""Tests of zoomrl.eval.pictures.draw_search."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from PIL import Image

from zoomrl.core.geometry import child
from zoomrl.eval.pictures import draw_search, search_lines


def _search(width, height, actions, rng, scale=0.75):
    window = [0.0, 0.0, float(width), float(height)]
    windows, q_values = [], []
    for a in actions:
        windows.append(list(window))
        q_values.append(rng.normal(0, 1, 6).tolist())
        if a < 5:
            window = child(window, a, scale).tolist()
    triggered = actions[-1] == 5
    return {
        "windows": windows,
        "actions": list(actions),
        "q_values": q_values,
        "triggered": triggered,
        "box": windows[-1] if triggered else None,
        "score": q_values[-1][5] if triggered else None,
        "steps": len(actions),
    }


@pytest.fixture
def record():
    rng = np.random.default_rng(0)
    width, height = 300, 200
    searches = [_search(width, height, [0, 4, 5], rng), _search(width, height, [3, 3, 1, 1, 0, 0, 2, 2, 4, 4], rng)]
    return {
        "image_id": "synthetic-1",
        "action_names": ["top-left", "top-right", "bottom-left", "bottom-right", "centre", "trigger"],
        "width": width,
        "height": height,
        "ground_truth": [
            {"box": [10.0, 20.0, 120.0, 150.0], "difficult": False},
            {"box": [200.0, 100.0, 280.0, 190.0], "difficult": True},
        ],
        "searches": searches,
        "windows_analysed": sum(s["steps"] for s in searches),
    }


@pytest.fixture
def image():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)


def _check_png(path):
    assert path.is_file() and path.stat().st_size > 1000
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size == (1200, 600)
        im.load()
    assert not [p for p in path.parent.iterdir() if p.name != path.name and path.name in p.name]  # no temp file


def test_draw_with_q_values(tmp_path, image, record):
    out = tmp_path / "sub" / "a.png"
    assert draw_search(image, record, out, class_name="seven") == out
    _check_png(out)


def test_draw_baseline_without_q_values(tmp_path, image, record):
    rec = copy.deepcopy(record)
    for s in rec["searches"]:
        s["q_values"] = None
    out = tmp_path / "b.png"
    draw_search(image, rec, out, class_name="seven", title="random baseline")
    _check_png(out)
    assert all("Q=n/a" in ln for ln in search_lines(rec) if "step" in ln)


def test_draw_empty_and_grey(tmp_path, image, record):
    rec = dict(record, searches=[], ground_truth=[], windows_analysed=0)
    out = tmp_path / "c.png"
    draw_search(image[..., 0], rec, out, class_name="seven")
    _check_png(out)


def test_search_lines(record):
    lines = search_lines(record)
    step_lines = [ln for ln in lines if ln.startswith("search ")]
    assert len(step_lines) == 13
    assert step_lines[0].startswith("search 1, step 1: top-left Q=[")
    assert step_lines[2].startswith("search 1, step 3: trigger Q=[")
    assert step_lines[0].count(",") == 1 + 5
    q = record["searches"][0]["q_values"][0]
    assert f"{q[0]:.2f}" in step_lines[0]
    assert step_lines[-1].startswith("search 2, step 10: centre Q=[")
    # a record without action names (another family's, or an older file) shows the action numbers
    plain = [ln for ln in search_lines({**record, "action_names": None}) if ln.startswith("search ")]
    assert plain[0].startswith("search 1, step 1: action 0 Q=[")


def test_overwrite_existing_png(tmp_path, image, record):
    out = tmp_path / "d.png"
    out.write_bytes(b"old")
    draw_search(image, record, out, class_name="seven")
    _check_png(out)


def test_a_moved_detection_is_drawn_in_magenta(tmp_path, record):
    """A triggered search with the box regressor's ``refined`` windows: the moved box (its last) is drawn dashed
    magenta; without ``refined``, or untriggered, nothing magenta is drawn."""
    from zoomrl.eval.pictures import moved_box

    grey = np.full((200, 300, 3), 128, dtype=np.uint8)
    rec = copy.deepcopy(record)
    first = rec["searches"][0]
    first["refined"] = [[0.0, 0.0, 1.0, 1.0]] * (len(first["windows"]) - 1) + [[150.0, 40.0, 250.0, 160.0]]
    assert moved_box(first) == [150.0, 40.0, 250.0, 160.0]
    assert moved_box({**first, "triggered": False}) is None and moved_box(record["searches"][0]) is None

    def magenta(rec, name):
        out = draw_search(grey, rec, tmp_path / name, class_name="seven")
        px = np.asarray(Image.open(out).convert("RGB")).astype(int)
        return int(((px[..., 0] > 200) & (px[..., 1] < 60) & (px[..., 2] > 200)).sum())

    assert magenta(rec, "moved.png") > 100
    assert magenta(record, "plain.png") == 0
