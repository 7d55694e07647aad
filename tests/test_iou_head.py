"""The auxiliary IoU head (``iou_weight``) and the ``predicted_iou`` detection score, against hand-computed values."""

import json

import keras
import numpy as np
import pytest

from conftest import TinyFeatures, square_task
from zoomrl.agents.dqn.agent import DQNAgent, one_step
from zoomrl.agents.dqn.losses import dqn_loss, iou_loss
from zoomrl.core.geometry import iou_matrix
from zoomrl.envs.vector import ZoomVectorEnv, run_vector
from zoomrl.envs.zoom import NUM_ACTIONS, ImageEpisode, ZoomEnv
from zoomrl.eval.detection import available_scores, rescored
from zoomrl.experiments.dqn_loop import store_transitions
from zoomrl.experiments.hierarchical.config import make_config
from zoomrl.experiments.hierarchical.test import agent_outputs, greedy_policy


def _agent(seed=0, **kw):
    keras.utils.set_random_seed(seed)
    values = dict(hidden_units=16, minibatch=8, learning_starts=8, train_every=1, gamma=0.9, dropout=0.0)
    values.update(kw)
    return DQNAgent(10, 6, make_config("tiny", **values), seed=seed)


def test_iou_loss_by_hand():
    pred = np.array([[0.2], [0.9]], np.float32)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(iou_loss(pred, np.array([0.5, 0.4]))), [0.09, 0.25], rtol=1e-6
    )


def test_learner_loss_adds_the_weighted_iou_error():
    agent = _agent(iou_weight=2.0)
    rng = np.random.default_rng(0)
    states = rng.normal(size=(4, 10)).astype(np.float32)
    x = {
        "states": states,
        "actions": np.array([0, 1, 2, 5], np.int32),
        "targets": np.ones(4, np.float32),
        "is_demo": np.zeros(4, np.float32),
        "ious": np.array([0.0, 0.3, 0.6, 1.0], np.float32),
    }
    y_pred = agent.learner(x)
    got = float(keras.ops.convert_to_numpy(agent.learner.compute_loss(x, None, y_pred)))
    q, p = agent.q_values(states), agent.predict_iou(states)
    want = np.mean((q[np.arange(4), x["actions"]] - 1.0) ** 2) + 2.0 * np.mean((p - x["ious"]) ** 2)
    assert got == pytest.approx(want, rel=1e-5)
    assert 0.0 < p.min() and p.max() < 1.0  # a sigmoid unit
    # without the head the loss is the DQN loss alone and there is nothing to predict
    plain = _agent()
    assert plain.iou_model is None and "iou" not in [layer.name for layer in plain.network.layers]
    with pytest.raises(ValueError, match="no IoU head"):
        plain.predict_iou(states)
    got_plain = float(keras.ops.convert_to_numpy(plain.learner.compute_loss(x, None, plain.learner(x))))
    q0 = plain.q_values(states)
    assert got_plain == pytest.approx(float(dqn_loss(q0, x, 0.8, 0.0)), rel=1e-5)


def test_iou_head_learns_the_window_iou():
    agent = _agent(iou_weight=1.0, learning_rate=1e-2)
    rng = np.random.default_rng(1)
    states = rng.normal(size=(40, 10)).astype(np.float32)
    ious = np.where(states[:, 0] > 0, 0.8, 0.1).astype(np.float32)
    for s, iou in zip(states, ious):
        agent.observe(one_step("k", s, 0, 0.0, None, True, False, iou=float(iou)))
    assert np.allclose(np.sort(np.unique(agent.memory.ious[: len(agent.memory)])), [0.1, 0.8])
    before = np.abs(agent.predict_iou(states) - ious).mean()
    for _ in range(150):
        agent.update(agent.sample(16))
    after = np.abs(agent.predict_iou(states) - ious).mean()
    assert after < 0.1 < before


def test_weights_round_trip_with_the_head(tmp_path):
    agent = _agent(iou_weight=1.0)
    path = tmp_path / "w.weights.h5"
    agent.save_weights(path)
    other = _agent(seed=3, iou_weight=1.0)
    other.load_weights(path)
    x = np.random.default_rng(2).normal(size=(3, 10)).astype(np.float32)
    np.testing.assert_array_equal(other.predict_iou(x), agent.predict_iou(x))
    np.testing.assert_array_equal(other.q_values(x), agent.q_values(x))


def test_a_checkpoint_names_its_head(tmp_path):
    from zoomrl.agents.dqn.checkpoint import CheckpointError, load_weights_checked, write_weights

    path = tmp_path / "w.weights.h5"
    write_weights(_agent(iou_weight=1.0), path, {"family": "hierarchical", "state_size": 10, "iou_head": True})
    with pytest.raises(CheckpointError, match="iou_head=True, this run has iou_head=False"):
        load_weights_checked(path, _agent(), {"family": "hierarchical", "state_size": 10, "iou_head": False})


def test_stored_transitions_carry_the_iou_of_their_window():
    agent = _agent(iou_weight=1.0, demo_ratio=1.0, n_step=1)
    agent = DQNAgent(36 + 24, 6, agent.config)
    feats = TinyFeatures()
    ((_, img, objs),) = square_task(1, 3)
    box = np.array([objs[0][1]], float)
    env = ZoomEnv(img, box, features=feats, scale=0.75, max_steps=4, index=0)
    run_vector(
        ZoomVectorEnv([env], feats),
        lambda idx, q, infos: np.array([i["oracle_action"] for i in infos]),
        None,
        store_transitions(agent, True, "demo"),
    )
    (search,) = env.episode.searches
    want = iou_matrix(np.array(search.windows, float), box)[:, 0]  # the IoU of each visited window, by geometry
    n = len(agent.demos)
    assert n == len(search.windows) >= 2
    np.testing.assert_allclose(agent.demos.ious[:n], want, rtol=1e-6)


def test_testing_logs_the_prediction_and_scores_by_it():
    agent = _agent(iou_weight=1.0)
    states = np.random.default_rng(4).normal(size=(2, 10)).astype(np.float32)
    out = agent_outputs(agent)(states)
    assert out.shape == (2, NUM_ACTIONS + 1)
    np.testing.assert_allclose(out[:, NUM_ACTIONS], agent.predict_iou(states), rtol=1e-6)
    assert agent_outputs(_agent()) is not None and agent_outputs(_agent())(states).shape == (2, NUM_ACTIONS)
    # the greedy policy never picks the extra column, even when it is the largest value
    row = np.array([[-5, -4, -3, -2, -1, -6, 0.9]])
    assert greedy_policy(np.array([0]), row, [{}]).tolist() == [4]
    # the search's log holds the Q-values and the prediction apart (the run loop logs them after each step)
    img = np.zeros((32, 32, 3), np.uint8)
    episode = ImageEpisode("k", img, np.array([[0, 0, 16, 16]], float), np.zeros(1, bool), scale=0.75, max_steps=3)
    episode.step(0)
    episode.log.log_outputs(row[0], NUM_ACTIONS)
    record = episode.log.to_record()
    assert record["q_values"] == [row[0, :NUM_ACTIONS].tolist()] and record["predicted_iou"] == [0.9]


def test_predicted_iou_score_ranks_by_the_last_prediction():
    gt = [{"box": [0, 0, 10, 10], "difficult": False}]
    search = {"triggered": True, "actions": [0, 5], "q_values": [[0] * 6, [0, 0, 0, 0, 0, 9.0]], "steps": 2}
    rec = [
        {"image_id": "a", "ground_truth": gt, "searches": [dict(search, box=[0, 0, 10, 10], predicted_iou=[0.1, 0.7])]},
        {
            "image_id": "b",
            "ground_truth": gt,
            "searches": [dict(search, box=[30, 30, 40, 40], predicted_iou=[0.9, 0.2])],
        },
    ]
    scored = rescored(rec, "predicted_iou")
    assert [r["searches"][0]["score"] for r in scored] == [0.7, 0.2]  # the triggered window's, not the first
    assert "predicted_iou" in available_scores(rec)
    plain = json.loads(json.dumps(rec))
    for r in plain:
        del r["searches"][0]["predicted_iou"]
    assert available_scores(plain) == ["trigger_q", "trigger_advantage", "trigger_probability", "trigger_order"]
