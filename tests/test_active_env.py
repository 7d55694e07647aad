"""The active localisation environment (Caicedo and Lazebnik 2015): geometry, rewards, guided exploration, the
inhibition-of-return cross, test restarts, the two detection sets. Expected values are computed by hand."""

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from conftest import TinyFeatures
from zoomrl.envs.active import (
    BIGGER,
    DOWN,
    FATTER,
    FINE_SMALLER,
    LEFT,
    RIGHT,
    SMALLER,
    TALLER,
    TRIGGER,
    UP,
    ActiveEnv,
    ActiveEpisode,
    context_window,
    cross_boxes,
    paint_cross,
    restart_box,
    transform,
    trigger_reward,
)
from zoomrl.envs.active_runs import guided_choice
from zoomrl.eval.proposals import attended_records, nms, recall_vs_proposals
from zoomrl.experiments.active.config import make_config
from zoomrl.experiments.active.test import evaluate_active

W, H = 200, 100
BOX = (20.0, 10.0, 120.0, 60.0)  # w 100, h 50


@pytest.mark.parametrize(
    "action, expected",
    [
        (RIGHT, (40, 10, 140, 60)),
        (LEFT, (0, 10, 100, 60)),
        (UP, (20, 0, 120, 50)),
        (DOWN, (20, 20, 120, 70)),
        (BIGGER, (10, 5, 130, 65)),
        (SMALLER, (30, 15, 110, 55)),
        (FATTER, (20, 15, 120, 55)),
        (TALLER, (30, 10, 110, 60)),
        (TRIGGER, BOX),
        (FINE_SMALLER, (22.5, 11.25, 117.5, 58.75)),
    ],
)
def test_actions_move_and_scale_by_alpha(action, expected):
    assert transform(BOX, action, W, H) == pytest.approx(expected)


def test_box_stays_inside_the_image():
    right_edge = (150.0, 0.0, 200.0, 100.0)
    assert transform(right_edge, RIGHT, W, H) == right_edge  # cannot move further: size kept, nothing moves
    assert transform(right_edge, UP, W, H) == right_edge
    assert transform(right_edge, DOWN, W, H) == right_edge
    assert transform(right_edge, LEFT, W, H) == pytest.approx((140, 0, 190, 100))
    assert transform((150.0, 0.0, 199.0, 100.0), RIGHT, W, H) == pytest.approx((151, 0, 200, 100))  # 1 px, not 9.8
    assert transform(right_edge, BIGGER, W, H) == pytest.approx((145, 0, 200, 100))  # clipped
    # a scaling never takes a side below 8 px, nor shortens one that already is
    assert transform((190.0, 90.0, 200.0, 100.0), SMALLER, W, H) == pytest.approx((191, 91, 199, 99))
    assert transform((0.0, 0.0, 6.0, 6.0), SMALLER, W, H) == pytest.approx((0, 0, 6, 6))
    with pytest.raises(ValueError, match="0..9"):
        transform(BOX, 10, W, H)


def test_context_window_is_rcnn_padding_clipped():
    # 16 px at 224 means 1/12 of each side: 100 x 48 box -> 8.33 and 4 px per side
    assert context_window((60, 20, 160, 68), W, H) == pytest.approx((60 - 100 / 12, 16, 160 + 100 / 12, 72))
    assert context_window((0, 0, 200, 100), W, H) == (0, 0, 200, 100)


def _episode(gt, window, training=True, **kw):
    img = np.full((H, W, 3), 200, np.uint8)
    ep = ActiveEpisode(
        "img",
        img,
        np.array([gt], float),
        np.zeros(1, bool),
        training=training,
        trigger_iou=0.6 if training else 0.5,
        **kw,
    )
    ep.window = tuple(float(v) for v in window)
    return ep


def test_move_rewards_are_the_sign_of_the_iou_change():
    ep = _episode((60, 10, 160, 60), BOX)  # IoU 3000/7000
    assert ep.step(RIGHT) == (1.0, False)  # -> (40,10,140,60), IoU 4000/6000
    assert ep.step(LEFT) == (-1.0, False)
    ep2 = _episode((60, 10, 160, 60), (0, 0, 200, 100))
    assert ep2.step(UP) == (-1.0, False)  # nothing moves: an unchanged IoU earns -1


def test_trigger_threshold_is_06_in_training_and_05_in_testing():
    gt, window = (0, 0, 100, 100), (0, 0, 100, 55)  # IoU 0.55
    assert _episode(gt, window, training=True).step(TRIGGER) == (-3.0, True)
    assert _episode(gt, window, training=False).step(TRIGGER) == (3.0, True)
    cfg = make_config("paper")
    assert cfg.env_kwargs(True)["trigger_iou"] == 0.6 and cfg.env_kwargs(False)["trigger_iou"] == 0.5
    assert _episode(gt, (0, 0, 100, 80), continuous_trigger=True).step(TRIGGER) == (pytest.approx(4.5), True)


def test_continuous_trigger_reward():
    assert trigger_reward(0.8, 0.6) == 3.0 and trigger_reward(0.59, 0.6) == -3.0
    assert trigger_reward(0.6, 0.6, True) == pytest.approx(3.0)
    assert trigger_reward(0.8, 0.6, True) == pytest.approx(4.5)
    assert trigger_reward(1.0, 0.6, True) == pytest.approx(6.0)
    assert trigger_reward(0.3, 0.6, True) == pytest.approx(-2.0)
    assert trigger_reward(0.0, 0.6, True) == pytest.approx(-3.0)


def test_guided_exploration_draws_among_positive_actions():
    # target (60,10,160,60) from BOX: only 'right' raises the IoU (0.43 -> 0.67; every other move lowers it)
    ep = _episode((60, 10, 160, 60), BOX)
    assert ep.positive_actions() == (RIGHT,)
    near = _episode((0, 0, 100, 100), (0, 0, 100, 70))  # IoU 0.7 >= 0.6: the trigger is positive too
    assert near.positive_actions() == (BIGGER, TRIGGER)  # bigger: (0, 0, 100, 77), IoU 0.77; down keeps 0.7
    rng = np.random.default_rng(0)
    q = np.arange(9.0)
    assert {guided_choice(q, 1.0, (RIGHT,), rng) for _ in range(50)} == {RIGHT}
    assert {guided_choice(q, 1.0, (), rng) for _ in range(300)} == set(range(9))  # none positive: all actions
    assert {guided_choice(q, 1.0, (RIGHT,), rng, guided=False) for _ in range(300)} == set(range(9))
    assert {guided_choice(q, 0.0, (RIGHT,), rng) for _ in range(20)} == {8}  # greedy


def test_oracle_takes_the_largest_iou_gain():
    assert _episode((60, 10, 160, 60), BOX).oracle_action() == RIGHT
    assert _episode((0, 0, 100, 100), (0, 0, 100, 70)).oracle_action() == TRIGGER


def test_cross_painting():
    img = np.full((100, 100, 3), 200, np.uint8)
    # box 50 x 40 centred (45, 40): arms 0.2 x 40 = 8 px and 0.2 x 50 = 10 px thick
    assert cross_boxes((20, 20, 70, 60), 100, 100) == ((20, 36, 70, 44), (40, 20, 50, 60))
    key = paint_cross(img, (20, 20, 70, 60))
    black = (img == 0).all(axis=2)
    assert black.sum() == 8 * 50 + 40 * 10 - 8 * 10
    assert black[36:44, 20:70].all() and black[20:60, 40:50].all()
    assert not black[20:36, 20:40].any() and (img[~black] == 200).all()
    assert key[0] == "cross"


def test_trigger_paints_the_cross_and_the_next_search_starts_from_the_whole_image():
    img = np.full((100, 100, 3), 200, np.uint8)
    gt = np.array([[0, 0, 50, 50], [50, 50, 100, 100]], float)
    ep = ActiveEpisode("img", img, gt, np.zeros(2, bool), training=True, trigger_iou=0.6)
    ep.window = (0.0, 0.0, 50.0, 50.0)
    assert ep.step(TRIGGER) == (3.0, True)
    ep.end_search()
    assert ep.found.tolist() == [True, False] and len(ep.mask_key) == 1
    assert (ep.image[20:30, 0:50] == 0).all()  # the horizontal arm of the cross
    assert ep.window == (0.0, 0.0, 100.0, 100.0) and len(ep.searches) == 2
    assert (img == 200).all()  # the caller's image is untouched


def test_test_searches_restart_at_the_four_corners():
    assert restart_box(0, W, H) == (0, 0, 200, 100)
    assert [restart_box(k, W, H) for k in range(1, 6)] == [
        (0, 0, 150, 75),
        (50, 0, 200, 75),
        (0, 25, 150, 100),
        (50, 25, 200, 100),
        (0, 0, 150, 75),
    ]
    env = ActiveEnv(
        np.full((H, W, 3), 90, np.uint8),
        np.array([[0, 0, 30, 30]], float),
        training=False,
        max_steps=2,
        max_total_steps=11,
        trigger_iou=0.5,
    )
    env.reset(seed=0)
    plan = [SMALLER, SMALLER, TRIGGER, SMALLER, SMALLER, SMALLER, SMALLER, SMALLER, SMALLER, SMALLER, SMALLER]
    for a in plan:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            if env.image_done:
                break
            env.reset()
    record = env.record("x")
    starts = [tuple(s["start"]) for s in record["searches"]]
    # 2 steps, a trigger after 1, then 2, 2, 2 and the last cut at the image's 11th step
    assert [s["steps"] for s in record["searches"]] == [2, 1, 2, 2, 2, 2]
    assert starts == [
        (0, 0, 200, 100),
        (0, 0, 150, 75),
        (50, 0, 200, 75),
        (0, 25, 150, 100),
        (50, 25, 200, 100),
        (0, 0, 150, 75),
    ]
    assert record["windows_analysed"] == 11 and env.image_done
    assert [s["triggered"] for s in record["searches"]] == [False, True, False, False, False, False]


def test_check_env_and_observation_layout():
    env = ActiveEnv(
        np.full((64, 64, 3), 90, np.uint8),
        np.array([[10, 10, 40, 40]], float),
        features=TinyFeatures(),
        max_steps=5,
        history_length=10,
    )
    check_env(env, skip_render_check=True)
    assert env.action_space.n == 9 and env.observation_space.shape == (36 + 90,)
    obs, info = env.reset(seed=1)
    obs, *_ = env.step(BIGGER)
    assert obs[36 + BIGGER] == 1 and obs[36:].sum() == 1
    ten = ActiveEnv(np.zeros((64, 64, 3), np.uint8), np.zeros((0, 4)), fine_smaller=True, history_length=10)
    assert ten.action_space.n == 10 and ten.observation_space.shape == (100,)


def _record():
    gt = [{"box": [0, 0, 10, 10], "difficult": False}]
    q = lambda t: [0.0] * 8 + [t]  # noqa: E731  (Q-values with Q[trigger] = t)
    return {
        "image_id": "a",
        "ground_truth": gt,
        "searches": [
            {
                "windows": [[0, 0, 10, 10], [0, 0, 20, 20]],
                "actions": [SMALLER, TRIGGER],
                "q_values": [q(0.2), q(0.9)],
                "triggered": True,
                "box": [0, 0, 20, 20],
                "score": 0.9,
                "steps": 2,
            },
            {
                "windows": [[50, 50, 60, 60]],
                "actions": [LEFT],
                "q_values": [q(1.0)],
                "triggered": False,
                "box": None,
                "score": None,
                "steps": 1,
            },
        ],
    }


def test_terminal_and_attended_region_sets_feed_the_evaluation():
    res = evaluate_active([_record()], nms_iou=0.0)
    tr, aar = res["terminal_regions"], res["all_attended_regions"]
    # TR: the one triggered box (IoU 0.25): a false positive
    assert tr["n_detections"] == 1 and tr["n_true_positives"] == 0 and tr["ap_voc07"] == 0.0
    # AAR: 3 boxes ranked 1.0 (FP), 0.9 (FP), 0.2 (TP): precision 1/3 at recall 1
    assert aar["n_detections"] == 3 and aar["n_true_positives"] == 1
    assert aar["ap_voc07"] == pytest.approx(1 / 3) and aar["ap_area"] == pytest.approx(1 / 3)
    # NMS at 0.2 drops the true box (IoU 0.25 with the higher-scored (0,0,20,20))
    assert evaluate_active([_record()], nms_iou=0.2)["all_attended_regions"]["n_true_positives"] == 0
    assert nms(np.array([[0, 0, 10, 10], [0, 0, 20, 20]], float), np.array([0.2, 0.9]), 0.2) == [1]
    assert len(attended_records([_record()], TRIGGER, 0.3)[0]["searches"]) == 3
    # the object is covered by the first box visited
    assert res["recall_vs_proposals"]["1"] == 1.0


def test_recall_against_proposals_follows_visit_order():
    rec = _record()
    rec["searches"][0]["windows"] = [[0, 0, 20, 20], [50, 50, 60, 60]]
    rec["searches"][1]["windows"] = [[1, 1, 10, 10]]  # IoU 0.81: the third box covers the object
    rec["ground_truth"].append({"box": [100, 100, 110, 110], "difficult": True})  # does not count
    assert recall_vs_proposals([rec], grid=(1, 2, 3, 5)) == {"1": 0.0, "2": 0.0, "3": 1.0, "5": 1.0}
