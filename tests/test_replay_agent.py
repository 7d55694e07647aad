"""Replay, n-step returns, losses and the DQN agent's options, each against hand-computed values."""

import numpy as np
import pytest

from zoomrl.agents.dqn.agent import DQNAgent, epsilon_greedy, one_step
from zoomrl.agents.dqn.config import DQNConfig
from zoomrl.agents.dqn.losses import dqn_loss, large_margin_loss, td_targets
from zoomrl.agents.dqn.replay import Batch, NStepAccumulator, ReplayMemory, unique_rows
from zoomrl.core.config import ConfigError
from zoomrl.experiments.hierarchical.config import Config, make_config


def test_replay_wraps_around_overwriting_the_oldest():
    mem = ReplayMemory(3, 2)
    for t in range(5):
        mem.add(np.full(2, t), t % 6, float(t), np.full(2, t + 1), 0.0 if t == 4 else 0.9, iou=t / 10)
    assert len(mem) == 3 and mem.position == 2
    # slots: 0 <- t=3, 1 <- t=4, 2 <- t=2
    assert mem.returns.tolist() == [3.0, 4.0, 2.0]
    assert mem.discounts.tolist() == pytest.approx([0.9, 0.0, 0.9])
    np.testing.assert_array_equal(mem.next_states[:, 0], [4, 0, 3])  # a terminal next state is never read: zeros
    batch = mem.sample(50, np.random.default_rng(0))
    assert set(batch.returns.tolist()) <= {2.0, 3.0, 4.0} and not batch.is_demo.any()
    np.testing.assert_allclose(batch.ious, batch.returns / 10)  # each sample keeps its own IoU


def test_unique_rows_and_compact_round_trip():
    rows, index = unique_rows(np.array([[1, 2], [3, 4], [1, 2], [5, 6], [3, 4]], float))
    assert rows.tolist() == [[1, 2], [3, 4], [5, 6]] and index.tolist() == [0, 1, 0, 2, 1]
    mem = ReplayMemory(6, 3)
    for t in range(8):  # s' of step t is s of step t+1: saved once
        mem.add(np.full(3, t), 1, 1.0, np.full(3, t + 1), 0.9, iou=t / 8)
    data = mem.state_dict()
    assert len(data["replay_rows"]) == 7  # 6 states + the last next state, not 12
    other = ReplayMemory(6, 3)
    other.load_state_dict(data)
    assert other.position == mem.position and len(other) == 6
    np.testing.assert_array_equal(other.states, mem.states)
    np.testing.assert_array_equal(other.next_states, mem.next_states)
    np.testing.assert_array_equal(other.ious, mem.ious)
    with pytest.raises(ValueError, match="capacity 6"):
        ReplayMemory(5, 3).load_state_dict(data)


def test_n_step_accumulator_by_hand():
    acc = NStepAccumulator(3, 0.5)
    s = [np.full(1, k, float) for k in range(6)]
    assert acc.add("a", s[0], 0, 1.0, s[1], False, False, iou=0.1) == []
    assert acc.add("b", s[0], 5, 8.0, s[1], False, False) == []  # another image, interleaved: never mixed in
    assert acc.add("a", s[1], 1, 2.0, s[2], False, False, iou=0.2) == []
    out = acc.add("a", s[2], 2, 4.0, s[3], False, False, iou=0.3)
    ((st, a, ret, nxt, disc, iou),) = out
    # the IoU travels with the first state of the n steps, not the last
    assert (st[0], a, ret, nxt[0], disc, iou) == (0, 0, 1 + 0.5 * 2 + 0.25 * 4, 3, 0.125, 0.1)
    # termination flushes the rest without bootstrapping
    out = acc.add("a", s[3], 3, 8.0, s[4], True, False)
    assert [(o[0][0], o[1], o[2], o[4]) for o in out] == [
        (1, 1, 2 + 0.5 * 4 + 0.25 * 8, 0.0),
        (2, 2, 4 + 0.5 * 8, 0.0),
        (3, 3, 8.0, 0.0),
    ]
    # truncation flushes with bootstrapping from the last state
    out = acc.add("b", s[1], 4, 2.0, s[2], False, True)
    assert [(o[0][0], o[2], o[3][0], o[4]) for o in out] == [(0, 8 + 0.5 * 2, 2, 0.25), (1, 2.0, 2, 0.5)]
    assert len(acc) == 0


def test_one_step_accumulator_is_the_paper_transition():
    acc = NStepAccumulator(1, 0.9)
    ((s, a, r, nxt, d, _),) = acc.add(0, np.zeros(1), 2, -1.0, np.ones(1), False, False)
    assert (a, r, nxt[0], d) == (2, -1.0, 1.0, pytest.approx(0.9))


def test_td_targets_max_and_double():
    next_target = np.array([[1.0, 5.0, 2.0], [3.0, 0.0, 4.0]])
    next_online = np.array([[9.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    returns, disc = np.array([1.0, 2.0]), np.array([0.5, 0.0])
    np.testing.assert_allclose(td_targets(returns, disc, next_target), [1 + 0.5 * 5, 2.0])
    # Double DQN: the online network picks (action 0 for row 0), the target network values it (1.0)
    np.testing.assert_allclose(td_targets(returns, disc, next_target, next_online), [1 + 0.5 * 1, 2.0])


def test_large_margin_loss_by_hand():
    q = np.array([[1.0, 2.0, 0.5], [3.0, 0.0, 0.0]], np.float32)
    loss = np.asarray(large_margin_loss(q, np.array([0, 0]), 0.8))
    # row 0: max(1, 2.8, 1.3) - 1 = 1.8; row 1: max(3, 0.8, 0.8) - 3 = 0
    np.testing.assert_allclose(loss, [1.8, 0.0], rtol=1e-6)
    batch = {
        "actions": np.array([0, 0]),
        "targets": np.array([1.0, 3.0], np.float32),
        "is_demo": np.array([1.0, 0.0], np.float32),
    }
    # TD: (1-1)^2, (3-3)^2 -> 0; margin only on the demo row: 1.8, weight 2
    assert float(dqn_loss(q, batch, 0.8, 2.0)) == pytest.approx(3.6, rel=1e-6)
    batch["is_demo"] = np.zeros(2, np.float32)
    assert float(dqn_loss(q, batch, 0.8, 2.0)) == pytest.approx(0.0, abs=1e-7)


def _agent(seed=0, **kw):
    import keras

    keras.utils.set_random_seed(seed)
    values = dict(hidden_units=16, minibatch=8, learning_starts=8, train_every=1, gamma=0.9)
    values.update(kw)
    return DQNAgent(10, 6, make_config("tiny", **values), seed=seed)


def _fill(agent, n, rng, demo=False):
    for k in range(n):
        agent.observe(
            one_step(
                k % 3,
                rng.normal(size=10),
                int(rng.integers(6)),
                float(rng.normal()),
                rng.normal(size=10),
                bool(rng.random() < 0.3),
                False,
                demo=demo,
            )
        )


def test_targets_vectorised_match_a_loop():
    agent = _agent()
    rng = np.random.default_rng(3)
    _fill(agent, 20, rng)
    batch = agent.memory.sample(8, rng)
    y = agent.targets(batch)
    for i in range(8):  # the Bellman target, one transition at a time
        q_next = agent.q_values(batch.next_states[i : i + 1])[0]
        want = batch.returns[i] + batch.discounts[i] * q_next.max()
        assert y[i] == pytest.approx(want, rel=1e-5, abs=1e-5)


def test_double_dqn_targets_use_online_choice_and_target_value():
    agent = _agent(target_update_every=1000, double_dqn=True)
    rng = np.random.default_rng(1)
    _fill(agent, 16, rng)
    for _ in range(5):
        agent.update(agent.memory.sample(8, rng))  # online moves away from the (never synced) target
    batch = agent.memory.sample(8, rng)
    online = agent.q_values(batch.next_states)
    target = np.asarray(agent.target_model.predict_on_batch(batch.next_states))
    want = batch.returns + batch.discounts * target[np.arange(8), online.argmax(1)]
    np.testing.assert_allclose(agent.targets(batch), want, rtol=1e-5, atol=1e-5)
    agent.config.double_dqn = False  # switched off, the targets take the target network's own maximum
    np.testing.assert_allclose(
        agent.targets(batch), batch.returns + batch.discounts * target.max(1), rtol=1e-5, atol=1e-5
    )


def test_target_network_syncs_every_k_updates():
    agent = _agent(target_update_every=3, double_dqn=True, learning_rate=1e-2)
    rng = np.random.default_rng(2)
    _fill(agent, 16, rng)
    w0 = agent.target_model.get_weights()[0].copy()
    for k in range(1, 4):
        agent.update(agent.memory.sample(8, rng))
        same = np.array_equal(agent.target_model.get_weights()[0], w0)
        assert same == (k < 3)
    np.testing.assert_array_equal(agent.target_model.get_weights()[0], agent.model.get_weights()[0])


def test_dueling_head_is_value_plus_centred_advantage():
    agent = _agent(dueling=True, dropout=0.0)
    names = [layer.name for layer in agent.model.layers]
    assert "value" in names and "advantages" in names
    x = np.random.default_rng(0).normal(size=(4, 10)).astype(np.float32)
    w1, b1 = agent.model.get_layer("dense_1").get_weights()
    h = np.maximum(x @ w1 + b1, 0)
    w2, b2 = agent.model.get_layer("dense_2").get_weights()
    h = np.maximum(h @ w2 + b2, 0)
    wv, bv = agent.model.get_layer("value").get_weights()
    wa, ba = agent.model.get_layer("advantages").get_weights()
    v, a = h @ wv + bv, h @ wa + ba
    np.testing.assert_allclose(agent.q_values(x), v + a - a.mean(1, keepdims=True), rtol=1e-4, atol=1e-4)
    assert "value" not in [layer.name for layer in _agent().model.layers]


def test_demonstrations_are_sampled_at_the_ratio_and_carry_the_margin():
    agent = _agent(demo_ratio=0.25, minibatch=8)
    rng = np.random.default_rng(4)
    _fill(agent, 30, rng, demo=True)
    assert len(agent.demos) > 0 and len(agent.memory) == 0 and agent.transitions == 0
    assert agent.sample(8).is_demo.all()  # nothing of its own yet: all demonstrations
    _fill(agent, 30, rng)
    batch = agent.sample(8)
    assert batch.is_demo.sum() == 2  # 25% of 8
    assert agent.learner.margin_weight == 1.0
    assert _agent().learner.margin_weight == 0.0  # no demonstrations, no margin term


def test_behaviour_cloning_warm_up_teaches_the_demonstrated_action():
    agent = _agent(demo_ratio=0.5, learning_rate=1e-2, dropout=0.0, bc_epochs=1)
    rng = np.random.default_rng(5)
    states = rng.normal(size=(20, 10)).astype(np.float32)
    expert = (states[:, 0] > 0).astype(int) * 3  # action 3 when feature 0 is positive, else action 0
    for s, a in zip(states, expert):
        agent.observe(one_step("d", s, int(a), 0.0, None, True, False, demo=True))
    agent.pretrain(150)
    assert (agent.q_values(states).argmax(1) == expert).mean() >= 0.9
    assert agent.updates == 150 and agent.learn() == {}  # the warm-up is not owed again by learn()


def test_update_moves_only_the_taken_action_towards_its_target():
    agent = _agent(dropout=0.0, learning_rate=1e-2)
    states = np.random.default_rng(0).normal(size=(8, 10)).astype(np.float32)
    before = agent.q_values(states)
    batch = Batch(
        states,
        np.full(8, 2),
        np.full(8, 10.0, np.float32),
        states,
        np.zeros(8, np.float32),
        np.zeros(8, np.float32),
        np.zeros(8, np.float32),
    )
    for _ in range(30):
        agent.update(batch)
    after = agent.q_values(states)
    assert np.all(np.abs(after[:, 2] - 10.0) < np.abs(before[:, 2] - 10.0))
    assert agent.updates == 30


def test_non_finite_loss_stops():
    agent = _agent()
    states = np.ones((8, 10), np.float32)
    returns = np.full(8, np.nan, np.float32)  # a NaN target: the loss is NaN whatever the network does
    batch = Batch(
        states, np.zeros(8), returns, states, np.zeros(8, np.float32), np.zeros(8, np.float32), np.zeros(8, np.float32)
    )
    with pytest.raises(FloatingPointError, match="non-finite"):
        agent.update(batch)


def test_agent_state_round_trip_is_exact():
    agent = _agent(seed=5, target_update_every=4, double_dqn=True, demo_ratio=0.5)
    rng = np.random.default_rng(9)
    _fill(agent, 24, rng, demo=True)
    _fill(agent, 24, rng)
    agent.learn()
    other = _agent(seed=7, target_update_every=4, double_dqn=True, demo_ratio=0.5)
    other.model.set_weights(agent.model.get_weights())
    other.set_state(agent.get_state())
    x = np.ones((2, 10), np.float32)
    for a in (agent, other):
        _fill(a, 8, np.random.default_rng(1))
    assert agent.learn() == other.learn()
    np.testing.assert_array_equal(agent.q_values(x), other.q_values(x))


def test_learn_respects_train_every_and_learning_starts():
    agent = _agent(train_every=4, learning_starts=8)
    for _ in range(7):
        agent.observe(one_step(0, np.zeros(10), 0, 0.0, np.zeros(10), False, False))
    assert agent.learn() == {}
    for _ in range(9):
        agent.observe(one_step(0, np.zeros(10), 0, 0.0, np.zeros(10), False, False))
    agent.learn()
    assert agent.updates == 16 // 4


def test_epsilon_schedule_floors_at_minimum():
    cfg = make_config("paper")
    assert [round(cfg.epsilon(e), 2) for e in (0, 1, 5, 9, 10, 49)] == [1.0, 0.9, 0.5, 0.1, 0.1, 0.1]


def test_epsilon_greedy_greedy_and_random():
    rng = np.random.default_rng(0)
    q = np.array([0, 1, 5, 2, 0, 0.0])
    assert all(epsilon_greedy(q, 0.0, rng) == 2 for _ in range(10))
    assert {epsilon_greedy(q, 1.0, rng) for _ in range(200)} == set(range(6))


def test_act_is_greedy_or_the_installed_explorer():
    """``act`` (the agent contract): the argmax of the Q-values; with ``explore``, the explorer the run loop
    installed, handed those Q-values and the rows' infos; without one, a one-line error."""
    agent = _agent()
    x = np.random.default_rng(4).normal(size=(5, 10)).astype(np.float32)
    q = agent.q_values(x)
    assert agent.act(x).tolist() == np.argmax(q, axis=1).tolist()
    with pytest.raises(ValueError, match="explore=True needs an explorer"):
        agent.act(x, explore=True)
    seen = []
    agent.explorer = lambda qs, infos: seen.append((qs, infos)) or np.array([info["k"] for info in infos])
    infos = [{"k": k} for k in (3, 1, 4, 1, 5)]
    assert agent.act(x, explore=True, infos=infos).tolist() == [3, 1, 4, 1, 5]
    np.testing.assert_array_equal(seen[0][0], q)
    assert seen[0][1] == infos


def test_observe_takes_a_vector_step_row_by_row():
    """One :class:`Transitions` of three rows stores what three single steps store (keys kept apart, the IoU
    from ``extras``), and counts three of the agent's steps; a demonstration step counts none."""
    from zoomrl.agents.base import Transitions

    rng = np.random.default_rng(8)
    s, s2 = rng.normal(size=(3, 10)), rng.normal(size=(3, 10))
    batch = Transitions(
        keys=["a", "b", "a"],
        states=s,
        actions=np.array([1, 2, 3]),
        rewards=np.array([0.5, -1.0, 2.0], np.float32),
        next_states=s2,
        terminated=np.array([False, True, False]),
        truncated=np.array([False, False, True]),
        extras={"iou": np.array([0.1, 0.2, 0.3])},
    )
    vector, single = _agent(n_step=2, gamma=0.5), _agent(n_step=2, gamma=0.5)
    vector.observe(batch)
    for j, key in enumerate(batch.keys):
        single.observe(
            one_step(
                key, s[j], j + 1, batch.rewards[j], s2[j], batch.terminated[j], batch.truncated[j], iou=0.1 * (j + 1)
            )
        )
    assert vector.transitions == 3 and len(vector.memory) == 3
    # "a": s0 then s2 (cut: both bootstrap from s2'), "b": s1 ends; hand values of the returns
    assert sorted(vector.memory.returns[:3].tolist()) == sorted([0.5 + 0.5 * 2.0, 2.0, -1.0])
    np.testing.assert_allclose(sorted(vector.memory.ious[:3].tolist()), [0.1, 0.2, 0.3], rtol=1e-6)
    for name in ("states", "actions", "returns", "discounts", "next_states", "ious"):
        np.testing.assert_allclose(getattr(vector.memory, name)[:3], getattr(single.memory, name)[:3], rtol=1e-6)
    demo = _agent(demo_ratio=0.5)
    demo.observe(batch._replace(demo=True))
    assert demo.transitions == 0 and len(demo.demos) == 3 and len(demo.memory) == 0


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(double_dqn=True, target_update_every=0), "double_dqn needs a target network"),
        (dict(learning_rate=float("nan")), "learning_rate must be finite"),
        (dict(learning_rate=-1e-3), r"learning_rate must lie in \(0"),
        (dict(bc_epochs=2), "needs demonstrations"),
        (dict(n_step=0), "n_step must be a positive integer"),
        (dict(gamma=1.5), r"gamma must lie in \[0, 1\]"),
    ],
)
def test_invalid_combinations_are_refused(kw, match):
    with pytest.raises(ConfigError, match=match):
        make_config("paper", **kw)


def test_config_round_trips_and_refuses_unknown_keys(tmp_path):
    cfg = make_config("fast", class_object="cat", n_step=3)
    cfg.save(tmp_path / "config.json")
    assert Config.load(tmp_path / "config.json") == cfg
    (tmp_path / "bad.json").write_text('{"learning_rat": 0.1, "epochs": 2}')
    with pytest.raises(ConfigError, match="unknown configuration keys learning_rat"):
        Config.load(tmp_path / "bad.json")
    assert DQNConfig().n_step == 1 and not DQNConfig().dueling  # the paper's values: every option off


def test_agent_stores_n_step_returns_per_episode():
    agent = _agent(n_step=3, gamma=0.5)
    s = [np.full(10, k, np.float32) for k in range(5)]
    for k in range(3):  # episode "a": rewards 1, 2, 4; episode "b" interleaved with reward 100
        agent.observe(one_step("a", s[k], k, float(2**k), s[k + 1], False, False))
        agent.observe(one_step("b", s[k], 5, 100.0, s[k + 1], False, False))
    assert len(agent.memory) == 2  # one 3-step transition per episode so far
    assert agent.memory.returns[:2].tolist() == [1 + 0.5 * 2 + 0.25 * 4, 100 + 50 + 25]
    assert agent.memory.discounts[0] == pytest.approx(0.125) and agent.memory.next_states[0, 0] == 3
    one = _agent(n_step=1)
    one.observe(one_step("a", s[0], 0, 1.0, s[1], False, False))
    assert len(one.memory) == 1 and one.memory.discounts[0] == pytest.approx(0.9)


def test_forced_trigger_in_the_training_policy():
    from zoomrl.envs.zoom import TRIGGER
    from zoomrl.experiments.hierarchical.train import training_policy

    q = np.array([[9.0, 0, 0, 0, 0, 0], [9.0, 0, 0, 0, 0, 0]])
    infos = [{"image_index": 0, "iou": 0.55}, {"image_index": 1, "iou": 0.3}]
    on = training_policy(make_config("tiny"), 0.0, 0, 0)(q, infos)
    assert on.tolist() == [TRIGGER, 0]  # IoU >= 0.5: the trigger, whatever the Q-values say
    off = training_policy(make_config("tiny", force_trigger=False), 0.0, 0, 0)(q, infos)
    assert off.tolist() == [0, 0]


def test_warm_up_minibatch_is_its_own():
    sizes = []
    for kw in ({}, {"bc_minibatch": 5}):
        agent = _agent(demo_ratio=0.5, minibatch=8, bc_epochs=1, **kw)
        _fill(agent, 20, np.random.default_rng(6), demo=True)
        agent.update = lambda batch: sizes.append(len(batch.states)) or 0.0
        agent.pretrain(2)
    assert sizes == [8, 8, 5, 5]  # 0 falls back to the DQN minibatch
