import numpy as np
import pytest

from zoomrl.agents.dqn.agent import DQNAgent
from zoomrl.experiments.hierarchical.config import make_config
from zoomrl.agents.dqn.replay import ReplayMemory


def test_replay_wraps_around_overwriting_the_oldest():
    mem = ReplayMemory(3, 2)
    for t in range(5):
        mem.add(np.full(2, t), t % 6, float(t), np.full(2, t + 1), t == 4)
    assert len(mem) == 3 and mem.position == 2
    # slots: 0 <- t=3, 1 <- t=4, 2 <- t=2
    assert mem.rewards.tolist() == [3.0, 4.0, 2.0]
    assert mem.terminal.tolist() == [False, True, False]
    np.testing.assert_array_equal(mem.next_states[:, 0], [4, 5, 3])
    batch = mem.sample(50, np.random.default_rng(0))
    assert set(batch.rewards.tolist()) <= {2.0, 3.0, 4.0}
    np.testing.assert_array_equal(batch.next_states[:, 0], batch.states[:, 0] + 1)


def test_replay_state_dict_round_trip():
    mem = ReplayMemory(4, 3)
    for t in range(6):
        mem.add(np.full(3, t), 1, 1.0, np.full(3, t), False)
    other = ReplayMemory(4, 3)
    other.load_state_dict(mem.state_dict())
    assert other.position == mem.position and len(other) == 4
    np.testing.assert_array_equal(other.states, mem.states)
    with pytest.raises(ValueError, match="capacity 4"):
        ReplayMemory(5, 3).load_state_dict(mem.state_dict())


def _agent(seed=0, **kw):
    import keras

    keras.utils.set_random_seed(seed)
    values = dict(hidden_units=16, minibatch=8, learning_starts=8, train_every=1, gamma=0.9)
    values.update(kw)
    cfg = make_config("tiny", **values)
    return DQNAgent(10, cfg, seed=seed)


def test_targets_vectorised_match_a_loop():
    agent = _agent()
    rng = np.random.default_rng(3)
    for _ in range(20):
        agent.observe(rng.normal(size=10), int(rng.integers(6)), float(rng.normal()), rng.normal(size=10),
                      bool(rng.random() < 0.3))
    batch = agent.memory.sample(8, rng)
    y = agent.targets(batch)
    for i in range(8):  # the Bellman target, one transition at a time
        q_next = agent.q_values(batch.next_states[i : i + 1])[0]
        want = batch.rewards[i] + (0.0 if batch.terminal[i] else 0.9 * q_next.max())
        assert y[i] == pytest.approx(want, rel=1e-5, abs=1e-5)


def test_update_moves_only_the_taken_action_towards_its_target():
    agent = _agent(dropout=0.0, learning_rate=1e-2)
    states = np.random.default_rng(0).normal(size=(8, 10)).astype(np.float32)
    before = agent.q_values(states)
    from zoomrl.agents.dqn.replay import Batch

    batch = Batch(states, np.full(8, 2), np.full(8, 10.0, np.float32), states, np.ones(8, bool))
    for _ in range(30):
        agent.update(batch)
    after = agent.q_values(states)
    assert np.all(np.abs(after[:, 2] - 10.0) < np.abs(before[:, 2] - 10.0))
    assert agent.updates == 30


def test_agent_is_deterministic_for_a_seed():
    results = []
    for _ in range(2):
        agent = _agent(seed=5)
        rng = np.random.default_rng(9)
        for _ in range(24):
            agent.observe(rng.normal(size=10), int(rng.integers(6)), float(rng.normal()), rng.normal(size=10), False)
        losses = agent.learn()
        results.append((losses, agent.q_values(np.ones((2, 10), np.float32))))
    assert results[0][0] == results[1][0] and len(results[0][0]) == 24
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_learn_respects_train_every_and_learning_starts():
    agent = _agent(train_every=4)
    agent.config.learning_starts = 8
    for t in range(7):
        agent.observe(np.zeros(10), 0, 0.0, np.zeros(10), False)
    assert agent.learn() == []
    for t in range(9):
        agent.observe(np.zeros(10), 0, 0.0, np.zeros(10), False)
    assert len(agent.learn()) == 16 // 4


def test_epsilon_schedule_floors_at_minimum():
    cfg = make_config("paper")
    assert [round(cfg.epsilon(e), 2) for e in (0, 1, 5, 9, 10, 49)] == [1.0, 0.9, 0.5, 0.1, 0.1, 0.1]


def test_select_action_greedy_and_random():
    rng = np.random.default_rng(0)
    q = np.array([0, 1, 5, 2, 0, 0.0])
    assert all(DQNAgent.select_action(q, 0.0, rng) == 2 for _ in range(10))
    picks = {DQNAgent.select_action(q, 1.0, rng) for _ in range(200)}
    assert picks == set(range(6))
