"""Issue 18's options of the active family: the box's geometry and the step count in the state, descriptor scaling,
exploration that also tries wrong triggers, demonstrations, a test policy that never revisits a box, the ``roi``
features end to end, and the ``fast_roi`` preset."""

import json

import numpy as np
import pytest

from conftest import TinyFeatures
from zoomrl.envs.active import (
    BIGGER,
    DOWN,
    LEFT,
    RIGHT,
    SMALLER,
    TRIGGER,
    UP,
    ActiveEnv,
    transform,
)
from zoomrl.experiments.active.config import PRESETS, make_config


def _quiet(_):
    pass


def test_geometry_and_step_count_follow_the_history_in_the_state():
    image = np.zeros((50, 100, 3), np.uint8)
    gt = np.array([[10, 5, 60, 40]])
    env = ActiveEnv(image, gt, state_geometry=True, state_steps=True, max_steps=40)
    assert env.observation_space.shape == (90 + 5,)
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs[90:], [0, 0, 1, 1, 0])
    obs, *_ = env.step(SMALLER)  # (10, 5, 90, 45) of a 100 x 50 image, 1 action of 40
    np.testing.assert_allclose(obs[90:], [0.1, 0.1, 0.8, 0.8, 1 / 40], rtol=1e-6)
    assert obs[SMALLER] == 1 and obs[:90].sum() == 1  # the history is where it was
    obs, *_ = env.step(RIGHT)  # moved by 0.2 * 80 = 16 px, stopped at the border at 10: (20, 5, 100, 45)
    np.testing.assert_allclose(obs[90:], [0.2, 0.1, 0.8, 0.8, 2 / 40], rtol=1e-6)
    # the count is the search's: a new search (testing: after a trigger) starts again from 0
    test_env = ActiveEnv(image, gt, state_steps=True, training=False, max_steps=40)
    test_env.reset(seed=0)
    test_env.step(SMALLER)
    test_env.step(TRIGGER)
    obs, _ = test_env.reset()
    assert obs[-1] == 0 and test_env.episode.total_steps == 2
    obs, *_ = test_env.step(SMALLER)
    assert obs[-1] == pytest.approx(1 / 40)
    only_steps = ActiveEnv(image, gt, state_steps=True)
    assert only_steps.observation_space.shape == (91,) and ActiveEnv(image, gt).observation_space.shape == (90,)


def test_descriptor_scale_multiplies_the_descriptor_only():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    features = TinyFeatures()
    env = ActiveEnv(image, np.array([[0, 0, 32, 32]]), features=features, descriptor_scale=0.25, state_geometry=True)
    env.reset(seed=0)
    obs, *_ = env.step(SMALLER)
    raw = features.describe([env.request()])[0]
    np.testing.assert_allclose(obs[:36], 0.25 * raw, rtol=1e-6)
    assert obs[36 + SMALLER] == 1 and obs[36:126].sum() == 1
    np.testing.assert_allclose(obs[126:], [0.1, 0.1, 0.8, 0.8], rtol=1e-6)


def test_exploration_also_tries_wrong_triggers():
    from zoomrl.envs.active_runs import guided_choice
    from zoomrl.experiments.active.train import training_policy

    rng = np.random.default_rng(0)
    q = np.zeros(9)
    draws = [guided_choice(q, 1.0, (UP,), rng, True, 0.3) for _ in range(4000)]
    share = np.mean(np.array(draws) == TRIGGER)
    assert abs(share - 0.3) < 0.03 and set(draws) == {UP, TRIGGER}  # the trigger though it does not pay
    assert TRIGGER not in [guided_choice(q, 1.0, (UP,), rng, True, 0.0) for _ in range(500)]
    assert {guided_choice(q, 0.0, (UP,), rng, True, 1.0) for _ in range(50)} == {0}  # greedy: argmax
    # the configuration reaches the training policy
    policy = training_policy(make_config("tiny", explore_trigger=1.0), 1.0, 0, 0)
    infos = [{"image_index": i, "positive_actions": (UP,)} for i in range(3)]
    assert list(policy(np.zeros((3, 9)), infos)) == [TRIGGER] * 3
    policy = training_policy(make_config("tiny"), 1.0, 0, 0)
    assert list(policy(np.zeros((3, 9)), infos)) == [UP] * 3


def test_revisit_actions_name_the_moves_back_to_a_visited_box():
    env = ActiveEnv(np.zeros((100, 100, 3), np.uint8), np.array([[0, 0, 50, 50]]), training=False)
    env.reset(seed=0)
    # the whole image: every move stops at the border and bigger is clipped back to it
    assert set(env.info()["revisit_actions"]) == {RIGHT, LEFT, UP, DOWN, BIGGER}
    env.step(SMALLER)
    env.step(SMALLER)  # (18, 18, 82, 82): no move leads back
    assert env.info()["revisit_actions"] == ()
    env.step(RIGHT)  # by 12.8 px: (30.8, 18, 94.8, 82)
    assert env.info()["revisit_actions"] == (LEFT,)  # back to the box after SMALLER
    env.step(DOWN)
    assert set(env.info()["revisit_actions"]) == {UP}
    assert TRIGGER not in env.info()["revisit_actions"]


def test_a_revisit_tolerance_stops_the_bigger_smaller_near_cycle():
    """Three times smaller from the whole 100 x 100 image: (24.4, 24.4, 75.6, 75.6), side 51.2; bigger (side 61.44)
    then smaller would give a box of side 49.152 with the same centre, not visited before but at IoU
    (49.152 / 51.2)^2 = 0.9216 with the box three steps back: a revisit at ``revisit_iou`` 0.9, not at 1."""
    from zoomrl.core.config import ConfigError
    from zoomrl.experiments.active.cli import build_parser, make_run_config

    for tolerance, expected in ((1.0, ()), (0.93, ()), (0.9, (SMALLER,))):
        env = ActiveEnv(np.zeros((100, 100, 3), np.uint8), np.array([[0, 0, 50, 50]]), training=False,
                        revisit_iou=tolerance)  # fmt: skip
        env.reset(seed=0)
        for _ in range(3):
            env.step(SMALLER)
        np.testing.assert_allclose(env.episode.window, (24.4, 24.4, 75.6, 75.6))
        env.step(BIGGER)
        assert env.info()["revisit_actions"] == expected
    assert make_config("fast_roi").revisit_iou == 1.0
    args = build_parser("test").parse_args(["--preset", "fast_roi", "--revisit-iou", "0.9"])
    assert make_run_config(args).revisit_iou == 0.9
    assert make_config("tiny", revisit_iou=0.9).env_kwargs(False)["revisit_iou"] == 0.9
    with pytest.raises(ConfigError, match="revisit_iou"):
        make_config("tiny", revisit_iou=1.5)
    from zoomrl.experiments.active.config import RESULT_FIELDS

    assert "revisit_iou" not in RESULT_FIELDS  # a test may choose it: training never reads it


def _ping_pong(obs):
    """Q-values of a policy that cycles: SMALLER twice (away from the borders), then RIGHT and LEFT in turn (the
    state's first 9 values are the last action, the next 9 the one before); the trigger is always the worst."""
    q = np.tile(np.linspace(1.0, 0.2, 9), (len(obs), 1))
    q[:, TRIGGER] = -5.0
    for j, o in enumerate(obs):
        last = int(np.argmax(o[:9])) if o[:9].any() else -1
        before = int(np.argmax(o[9:18])) if o[9:18].any() else -1
        best = {-1: SMALLER, SMALLER: RIGHT if before == SMALLER else SMALLER, RIGHT: LEFT, LEFT: RIGHT}
        q[j, best.get(last, RIGHT)] = 10.0
    return q


def _run(policy, max_steps=12, total=36):
    from zoomrl.envs.vector import ZoomVectorEnv, run_vector

    env = ActiveEnv(
        np.zeros((100, 120, 3), np.uint8),
        np.array([[0, 0, 30, 30]]),
        training=False,
        max_steps=max_steps,
        max_total_steps=total,
    )
    run_vector(ZoomVectorEnv([env], None, final_observations=False), policy, _ping_pong)
    return env.record("im")["searches"]


def test_the_test_policy_never_revisits_a_box_within_a_search():
    from zoomrl.envs.active_runs import greedy_policy, revisit_free_greedy_policy

    plain = _run(greedy_policy)
    # the plain greedy policy cycles between two boxes until the step limit restarts it
    assert all(len(s["actions"]) == 12 for s in plain)
    assert any(len({tuple(w) for w in s["windows"]}) < len(s["windows"]) for s in plain)
    free = _run(revisit_free_greedy_policy)
    assert sum(len(s["actions"]) for s in free) == 36
    for s in free:
        boxes = [tuple(np.round(w, 3)) for w in s["windows"]]
        nxt = transform(s["windows"][-1], s["actions"][-1], 120, 100)
        assert len(set(boxes)) == len(boxes) and (s["actions"][-1] == TRIGGER or tuple(np.round(nxt, 3)) not in boxes)
    # the Q-values logged are the network's own (the mask only chooses the action)
    assert max(free[0]["q_values"][2]) == 10.0
    # when every move is a revisit the trigger is left, however low its value
    infos = [{"revisit_actions": tuple(a for a in range(9) if a != TRIGGER)}]
    assert revisit_free_greedy_policy(np.arange(1), np.linspace(1, 0, 9)[None], infos)[0] == TRIGGER


def test_test_uses_the_revisit_free_policy_when_configured():
    from zoomrl.envs.active_runs import greedy_policy, revisit_free_greedy_policy, test_policy

    assert test_policy(make_config("tiny")) is greedy_policy
    assert test_policy(make_config("tiny", avoid_revisits=True)) is revisit_free_greedy_policy


def test_existing_presets_unchanged_and_fast_roi_combines_the_options():
    assert PRESETS["paper"] == {"epochs": 15, "epsilon_decay": 0.18}
    fast = make_config("fast")
    assert (
        fast.features,
        fast.state_geometry,
        fast.state_steps,
        fast.explore_trigger,
        fast.avoid_revisits,
        fast.demo_ratio,
        fast.descriptor_scale,
    ) == ("vgg", False, False, 0.0, False, 0.0, 1.0)
    c = make_config("fast_roi")
    for name, value in PRESETS["fast"].items():
        assert getattr(c, name) == value, name
    assert (c.features, c.state_geometry, c.state_steps, c.avoid_revisits) == ("roi", True, True, True)
    assert c.descriptor_scale == 0.1 and c.explore_trigger == 0.1 and c.demo_ratio > 0 and c.margin_weight > 0
    assert c.bc_epochs == 1
    assert (c.epochs, c.number_of_steps, c.test_steps) == (15, 40, 200)  # the paper's protocol


def test_command_line_flags_of_issue_18():
    from zoomrl.experiments.active.cli import build_parser, make_run_config

    args = build_parser("train").parse_args(
        [
            "--preset",
            "tiny",
            "--features",
            "roi",
            "--state-geometry",
            "--state-steps",
            "--explore-trigger",
            "0.2",
            "--descriptor-scale",
            "0.1",
            "--avoid-revisits",
            "--clip-preset",
            "my_clip",
            "--roi-max-side",
            "320",
        ]
    )
    c = make_run_config(args)
    assert (
        c.features,
        c.state_geometry,
        c.state_steps,
        c.explore_trigger,
        c.descriptor_scale,
        c.avoid_revisits,
        c.clip_preset,
        c.roi_max_side,
    ) == ("roi", True, True, 0.2, 0.1, True, "my_clip", 320)
    c = make_run_config(build_parser("test").parse_args(["--preset", "fast_roi"]))
    assert c.features == "roi" and c.avoid_revisits  # the preset's features, not a flag default
    c = make_run_config(build_parser("test").parse_args(["--preset", "fast_roi", "--no-avoid-revisits"]))
    assert not c.avoid_revisits
    with pytest.raises(Exception, match="explore_trigger"):
        make_config("tiny", explore_trigger=1.5)


@pytest.fixture(scope="module")
def data(square_voc):
    return square_voc


def test_roi_features_and_the_options_train_and_test_end_to_end(data, tmp_path):
    """The fast_roi preset's options on the square task, with RoIAlign features over a stand-in map: the state
    holds descriptor, history, geometry and steps; demonstrations are the oracle's; testing adopts the state."""
    from pathlib import Path

    from test_roi_features import mean_map
    from zoomrl.agents.dqn.checkpoint import read_weights_meta
    from zoomrl.experiments.active.test import test
    from zoomrl.experiments.active.train import train
    from zoomrl.vision.roi import RoiAlignFeatures

    def roi():
        return RoiAlignFeatures(mean_map, "test", channels=3, cache_mb=16, log=_quiet)

    options = dict(
        state_geometry=True,
        state_steps=True,
        explore_trigger=0.1,
        descriptor_scale=0.1,
        demo_ratio=0.25,
        bc_epochs=1,
        bc_updates_per_epoch=2,
    )
    cfg = make_config("tiny", class_object="box", epochs=1, **options)
    logs = []
    features = roi()
    out = train(
        cfg, [data / "train"], "trainval", tmp_path / "m", features=features, log=logs.append, show_progress=False
    )
    assert read_weights_meta(Path(out["weights"]))["state_size"] == 7 * 7 * 3 + 90 + 5
    assert any(line.startswith("demonstrations:") for line in logs)
    # one map per training image, shared by the demonstrations and the epoch (one object each: no search after a
    # trigger, so no second map)
    assert features.backbone_calls == 4
    res = test(
        make_config("tiny", class_object="box", avoid_revisits=True),
        [data / "test"],
        "test",
        None,
        tmp_path / "r",
        model_dir=tmp_path / "m",
        features=roi(),
        log=_quiet,
        show_progress=False,
    )
    assert res["config"]["state_geometry"] and res["config"]["state_steps"]  # adopted from the trained run
    for record in json.loads((tmp_path / "r" / "detections.json").read_text())["images"]:
        for s in record["searches"]:
            boxes = [tuple(np.round(b, 3)) for b in s["windows"]]
            assert len(set(boxes)) == len(boxes)


def test_demonstrations_are_the_oracles(data):
    """The active family's demonstrations go through the shared machinery (dqn_loop): the oracle's actions, each
    raising the IoU or triggering at tau on the square task, stored in the agent's demonstration memory."""
    from zoomrl.data.images import load_images
    from zoomrl.experiments.active.train import ActiveTrainee, build_agent, state_size_of

    cfg = make_config("tiny", class_object="box", demo_ratio=0.5, state_geometry=True)
    images = load_images([data / "train"], "trainval", "box", False, None, _quiet)
    features = TinyFeatures()
    agent = build_agent(cfg, state_size_of(cfg, features))
    steps = ActiveTrainee(cfg, images, features, agent, {}, data, _quiet).collect_demonstrations()
    memory = agent.demos
    assert steps == len(memory) > 0 and memory.demo
    actions, returns = memory.actions[: len(memory)], memory.returns[: len(memory)]
    assert set(returns[actions == TRIGGER]) == {3.0} and set(returns[actions != TRIGGER]) == {1.0}
    assert (actions == TRIGGER).sum() == sum(len(im.boxes("box", include_difficult=False)) for im in images)


def test_active_resume_keeps_every_dqn_field_that_changes_training():
    """A resumed active run must refuse a changed ``iou_weight``, ``bc_minibatch`` or ``weight_decay`` as the
        hierarchical family does: both keep every field but those a resumed run may change
    (``agents/dqn/config.result_fields``)."""
    from zoomrl.experiments.active.config import RESULT_FIELDS as ACTIVE
    from zoomrl.experiments.hierarchical.config import RESULT_FIELDS as HIERARCHICAL

    for name in ("iou_weight", "bc_minibatch", "weight_decay", "n_step", "learning_rate"):
        assert name in ACTIVE and name in HIERARCHICAL, name
    assert len(set(HIERARCHICAL)) == len(HIERARCHICAL) and len(set(ACTIVE)) == len(ACTIVE)


def _corner_revisit(scope: str, revisit_iou: float = 1.0) -> tuple[tuple[int, ...], ActiveEnv]:
    """Six searches of two actions on a 100 x 100 image: the whole image (smaller twice), then the corners of
    75 x 75: top-left (right: (15, 0, 90, 75) analysed, then smaller), top-right, bottom-left, bottom-right
    (smaller twice each), and the top-left corner again, where the revisiting moves are read."""
    env = ActiveEnv(np.zeros((100, 100, 3), np.uint8), np.array([[0, 0, 50, 50]]), training=False, max_steps=2,
                    revisit_scope=scope, revisit_iou=revisit_iou)  # fmt: skip
    env.reset(seed=0)
    for actions in ((SMALLER, SMALLER), (RIGHT, SMALLER), *[(SMALLER, SMALLER)] * 3):
        for a in actions:
            *_, truncated, _ = env.step(a)
        assert truncated
        env.reset()  # the next search, the image's painting and searches kept
    assert len(env.episode.searches) == 6
    np.testing.assert_allclose(env.episode.window, (0, 0, 75, 75))
    return env.info()["revisit_actions"], env


def test_an_image_wide_revisit_scope_counts_the_earlier_searches_boxes():
    """From the top-left corner box, left and up leave the box where it is (revisits in any scope); right leads to
    (15, 0, 90, 75), which the second search analysed: a revisit only when the image's earlier searches count."""
    from zoomrl.core.config import ConfigError
    from zoomrl.experiments.active.cli import build_parser, make_run_config

    assert set(_corner_revisit("search")[0]) == {LEFT, UP}
    assert set(_corner_revisit("image")[0]) == {LEFT, UP, RIGHT}
    # the test's first search has no earlier one: the same under both scopes
    for scope in ("search", "image"):
        env = ActiveEnv(np.zeros((100, 100, 3), np.uint8), np.array([[0, 0, 50, 50]]), training=False,
                        revisit_scope=scope)  # fmt: skip
        env.reset(seed=0)
        assert set(env.info()["revisit_actions"]) == {RIGHT, LEFT, UP, DOWN, BIGGER}
    # when the earlier searches' boxes would leave no move, the search's own boxes alone count
    _, env = _corner_revisit("image")
    e = env.episode
    e.searches[0].windows.extend([list(e.moved(a)) for a in range(9) if a != TRIGGER])
    assert set(env.info()["revisit_actions"]) == {LEFT, UP}
    # with a tolerance, a box near one an earlier search analysed: down leads to (0, 15, 75, 90), at IoU
    # 74.5 / 75.5 = 0.987 with (0, 15.5, 75, 90.5)
    for scope, expected in (("search", {LEFT, UP}), ("image", {LEFT, UP, RIGHT, DOWN})):
        _, env = _corner_revisit(scope, revisit_iou=0.9)
        env.episode.searches[0].windows.append([0.0, 15.5, 75.0, 90.5])
        assert set(env.info()["revisit_actions"]) == expected
    # the flag, the config and its check
    args = build_parser("test").parse_args(["--preset", "fast_roi", "--revisit-scope", "image"])
    assert make_run_config(args).revisit_scope == "image"
    assert make_config("fast_roi").revisit_scope == "image" and make_config("fast").revisit_scope == "search"
    assert make_config("tiny", revisit_scope="image").env_kwargs(False)["revisit_scope"] == "image"
    with pytest.raises(ConfigError, match="revisit_scope"):
        make_config("tiny", revisit_scope="everywhere")
    from zoomrl.experiments.active.config import RESULT_FIELDS

    assert "revisit_scope" not in RESULT_FIELDS  # a test may choose it: training never reads it


def test_a_test_search_restarts_after_its_restart_steps():
    """Testing with ``restart_steps`` 3 on a 100 x 100 image: three moves without a trigger, and the second search
    starts from the top-left corner box of 75 % (restart_box 1); the step count in the state stays over
    ``max_steps`` (2 / 40 after two actions); training and 0 keep ``max_steps``."""
    from zoomrl.core.config import ConfigError
    from zoomrl.experiments.active.cli import build_parser, make_run_config

    def env_after(moves: int, **kw) -> ActiveEnv:
        env = ActiveEnv(np.zeros((100, 100, 3), np.uint8), np.array([[60, 60, 90, 90]]), state_steps=True,
                        max_steps=40, **kw)  # fmt: skip
        env.reset(seed=0)
        for a in [RIGHT, DOWN, LEFT][:moves]:
            env.step(a)
        return env

    two = env_after(2, training=False, restart_steps=3)
    assert len(two.episode.searches) == 1 and two.episode.history_features()[-1] == pytest.approx(2 / 40)
    three = env_after(3, training=False, restart_steps=3)
    assert [len(s.actions) for s in three.episode.searches] == [3, 0]
    assert three.episode.starts == [(0.0, 0.0, 100.0, 100.0), (0.0, 0.0, 75.0, 75.0)]
    for kw in ({"training": False, "restart_steps": 0}, {"training": True, "restart_steps": 3}):
        episode = env_after(3, **kw).episode
        assert len(episode.searches) == 1 and not episode.timed_out and not episode.finished, kw
    # the config, its flags and its check
    assert make_config("tiny", test_restart_steps=5).env_kwargs(False)["restart_steps"] == 5
    assert make_config("fast_roi").test_restart_steps == 10 and make_config("fast").test_restart_steps == 0
    args = build_parser("test").parse_args(["--preset", "tiny", "--test-restart-steps", "7", "--restart-scale", "0.5"])
    assert (make_run_config(args).test_restart_steps, make_run_config(args).restart_scale) == (7, 0.5)
    args = build_parser("test").parse_args(["--preset", "tiny", "--test-restart-steps", "0"])  # number_of_steps
    assert make_run_config(args).test_restart_steps == 0
    with pytest.raises(ConfigError, match="test_restart_steps"):
        make_config("tiny", test_restart_steps=-1)
    from zoomrl.experiments.active.config import RESULT_FIELDS

    assert "test_restart_steps" not in RESULT_FIELDS and "restart_scale" not in RESULT_FIELDS


def test_test_epsilon_takes_random_moves_never_the_trigger_nor_a_revisit():
    from zoomrl.envs.active_runs import exploring_policy, revisit_free_greedy_policy, test_policy

    q = np.zeros((2, 9))
    q[:, TRIGGER] = 1.0  # greedy: always the trigger
    infos = [{"image_index": 0, "revisit_actions": (LEFT, UP)}, {"image_index": 5, "revisit_actions": ()}]
    always = exploring_policy(revisit_free_greedy_policy, 1.0, 3, 9)
    drawn = np.array([always(np.arange(2), q, infos) for _ in range(300)])
    assert TRIGGER not in drawn and not set(drawn[:, 0]) & {LEFT, UP}
    assert set(drawn[:, 0]) == {RIGHT, DOWN, BIGGER, SMALLER, 6, 7} and set(drawn[:, 1]) == set(range(8))
    # every move a revisit: any move still
    stuck = [{"image_index": 0, "revisit_actions": tuple(range(8))}]
    assert exploring_policy(revisit_free_greedy_policy, 1.0, 3, 9)(np.arange(1), q[:1], stuck)[0] != TRIGGER
    # at 0.5 about half the steps leave the greedy trigger; an image's draws do not depend on its batch
    half = exploring_policy(revisit_free_greedy_policy, 0.5, 3, 9)
    alone = exploring_policy(revisit_free_greedy_policy, 0.5, 3, 9)
    together = np.array([half(np.arange(2), q, infos) for _ in range(400)])
    assert 0.4 < (together[:, 1] != TRIGGER).mean() < 0.6
    solo = np.array([alone(np.arange(1), q[1:], infos[1:])[0] for _ in range(400)])
    np.testing.assert_array_equal(solo, together[:, 1])
    # the config: 0 keeps the plain policy, the preset's value reaches the test policy
    assert test_policy(make_config("tiny", avoid_revisits=True)) is revisit_free_greedy_policy
    policy = test_policy(make_config("tiny", avoid_revisits=True, test_epsilon=1.0))
    assert policy(np.arange(2), q, infos)[0] != TRIGGER
    with pytest.raises(Exception, match="test_epsilon"):
        make_config("tiny", test_epsilon=1.5)
    from zoomrl.experiments.active.cli import build_parser, make_run_config

    args = build_parser("test").parse_args(["--preset", "tiny", "--test-epsilon", "0.2"])
    assert make_run_config(args).test_epsilon == 0.2 and make_config("fast_roi").test_epsilon == 0.0
