import numpy as np
import pytest

from zoomrl.envs.rewards import move_reward, trigger_reward
from zoomrl.envs.zoom import MASK_PIXEL, TRIGGER, ImageEpisode, choose_target, history_vector, paint


def test_rewards():
    assert move_reward(0.2, 0.3) == 1.0
    assert move_reward(0.3, 0.3) == -1.0  # equal is not an improvement
    assert move_reward(0.3, 0.1) == -1.0
    assert trigger_reward(0.5) == 3.0
    assert trigger_reward(0.49) == -3.0


def test_history_vector_most_recent_first():
    v = history_vector([1, 2, 3, 4, 5], 4)
    want = np.zeros(24, dtype=np.float32)
    want[0 + 5] = want[6 + 4] = want[12 + 3] = want[18 + 2] = 1.0  # 5 newest, then 4, 3, 2; 1 dropped
    np.testing.assert_array_equal(v, want)
    partial = history_vector([0], 4)
    assert partial[0] == 1.0 and partial.sum() == 1.0


def test_choose_target_picks_highest_iou_among_available():
    gt = np.array([[0, 0, 10, 10], [0, 0, 50, 50], [40, 40, 100, 100]], dtype=float)
    window = (0, 0, 60, 60)
    # IoUs: 100/3600, 2500/3600, 400/(3600+3600-400)
    idx, value = choose_target(window, gt, np.array([True, True, True]))
    assert idx == 1 and value == pytest.approx(2500 / 3600)
    idx, value = choose_target(window, gt, np.array([True, False, True]))
    assert idx == 2 and value == pytest.approx(400 / 6800)
    assert choose_target(window, gt, np.zeros(3, bool)) == (-1, 0.0)


def test_paint_uses_vgg_mean_and_returns_pixel_box():
    img = np.zeros((10, 20, 3), np.uint8)
    assert paint(img, (2.2, 1.0, 5.6, 4.0)) == (2, 1, 6, 4)
    assert (img[1:4, 2:6] == MASK_PIXEL).all()
    assert img.sum() == MASK_PIXEL.astype(int).sum() * 12


def _episode(gt, difficult=None, training=True, max_searches=3):
    img = np.full((100, 200, 3), 50, np.uint8)
    gt = np.asarray(gt, float)
    return ImageEpisode(
        "im",
        img,
        gt,
        np.zeros(len(gt), bool) if difficult is None else np.asarray(difficult),
        scale=0.5,
        max_steps=3,
        training=training,
        max_searches=max_searches,
    )


def test_step_rewards_and_windows():
    ep = _episode([[0, 0, 100, 50]])  # top-left quadrant of a 200x100 image exactly
    r, terminal = ep.step(0)  # move to top-left: IoU grows 0.25 -> 1.0
    assert (r, terminal) == (1.0, False)
    assert ep.window == (0.0, 0.0, 100.0, 50.0)
    r, terminal = ep.step(TRIGGER)
    assert (r, terminal) == (3.0, True)
    ep.end_search()
    assert ep.finished  # one object found, none left
    assert ep.found.tolist() == [True]
    assert ep.mask_key == ((0, 0, 100, 50),)
    assert (ep.image[:50, :100] == MASK_PIXEL).all() and (ep.image[50:, 100:] == 50).all()


def test_wrong_move_and_wrong_trigger():
    ep = _episode([[0, 0, 100, 50], [150, 0, 200, 20]])  # two objects: two training searches
    r, _ = ep.step(3)  # bottom-right: IoU with the target (the first, 0.25) -> 0
    assert r == -1.0
    r, terminal = ep.step(TRIGGER)
    assert (r, terminal) == (-3.0, True)
    ep.end_search()
    assert not ep.finished and ep.mask_key == ()  # nothing painted, searches again from the whole image
    assert ep.window == (0.0, 0.0, 200.0, 100.0) and ep.history_features().sum() == 0


def test_time_out_and_testing_stops_without_trigger():
    ep = _episode([[0, 0, 100, 50]], training=False)
    for _ in range(3):
        ep.step(4)
    assert ep.timed_out
    ep.end_search()
    assert ep.finished
    rec = ep.record("im")
    assert rec["searches"][0]["triggered"] is False and rec["searches"][0]["steps"] == 3
    assert rec["windows_analysed"] == 3


def test_testing_paints_triggered_window_and_continues():
    ep = _episode([[0, 0, 100, 50], [100, 50, 200, 100]], training=False, max_searches=3)
    ep.step(0)
    ep.log.log_outputs(np.arange(6.0), 6)  # what the run loop logs after each step
    ep.step(TRIGGER)
    ep.log.log_outputs(np.arange(6.0) * 2, 6)
    ep.end_search()
    assert not ep.finished and ep.mask_key == ((0, 0, 100, 50),)
    rec = ep.record("im")
    s = rec["searches"][0]
    assert s["box"] == [0.0, 0.0, 100.0, 50.0] and s["score"] == 10.0 and s["actions"] == [0, TRIGGER]


def test_difficult_objects_are_never_targets_and_training_searches_once_per_object():
    ep = _episode([[0, 0, 100, 50], [100, 50, 200, 100]], difficult=[True, False])
    assert ep.max_searches == 1
    assert ep.target()[0] == 1
