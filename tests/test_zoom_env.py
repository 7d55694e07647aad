"""The hierarchical environment through the Gymnasium API, and the lockstep vector environment."""

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from conftest import TinyFeatures
from zoomrl.envs.vector import ZoomVectorEnv, run_vector
from zoomrl.envs.zoom import MASK_PIXEL, TRIGGER, ZoomEnv


def _image():
    img = np.full((100, 200, 3), 60, np.uint8)
    img[0:50, 0:100] = 220  # object 1: the top-left quadrant
    img[50:100, 100:200] = 200  # object 2: the bottom-right quadrant
    return img


GT = np.array([[0, 0, 100, 50], [100, 50, 200, 100]], float)


def test_check_env_passes():
    env = ZoomEnv(_image(), GT, features=TinyFeatures(), scale=0.5, max_steps=4)
    check_env(env, skip_render_check=True)


def test_spaces_and_observation_layout():
    env = ZoomEnv(_image(), GT, features=TinyFeatures(), scale=0.5, max_steps=4, history_length=4)
    assert env.action_space.n == 6
    assert env.observation_space.shape == (36 + 24,)
    obs, info = env.reset(seed=0)
    assert obs.shape == (60,) and obs.dtype == np.float32
    assert obs[36:].sum() == 0  # no action yet
    assert info["window"] == (0.0, 0.0, 200.0, 100.0) and info["iou"] == pytest.approx(0.25)
    obs, r, term, trunc, info = env.step(0)
    assert (r, term, trunc) == (1.0, False, False)
    assert obs[36:42].tolist() == [1, 0, 0, 0, 0, 0]  # most recent action first
    assert info["window"] == (0.0, 0.0, 100.0, 50.0) and info["iou"] == 1.0 and info["target"] == 0


def test_search_is_an_episode_and_painting_carries_over():
    env = ZoomEnv(_image(), GT, scale=0.5, max_steps=4, training=True)
    env.reset()
    env.step(0)
    _, r, term, trunc, info = env.step(TRIGGER)
    assert (r, term, trunc) == (3.0, True, False) and not info["image_done"]
    obs, info = env.reset()  # next search: the whole image again, the found object painted
    assert info["window"] == (0.0, 0.0, 200.0, 100.0) and info["target"] == 1
    assert (env.episode.image[:50, :100] == MASK_PIXEL).all()
    for _ in range(4):  # a search cut by the step limit is truncated, not terminated
        _, r, term, trunc, info = env.step(4)
    assert term is False and trunc is True and info["image_done"]
    env.reset()  # the image had no search left: it starts afresh, unpainted
    assert not (env.episode.image[:50, :100] == MASK_PIXEL).all()


def test_action_out_of_range_is_refused():
    env = ZoomEnv(_image(), GT)
    env.reset()
    with pytest.raises(ValueError, match="0..5"):
        env.step(6)


def test_vector_env_matches_single_envs_and_makes_one_feature_call_per_step():
    class Counting(TinyFeatures):
        calls = 0

        def describe(self, requests):
            Counting.calls += 1
            return super().describe(requests)

    feats = Counting()
    rng = np.random.default_rng(0)
    plans = [rng.integers(0, 6, size=40) for _ in range(3)]

    def policy_for(plans, envs):
        counters = [0] * len(envs)

        def policy(idx, q, infos):
            out = []
            for i in idx:
                out.append(plans[i][counters[i]])
                counters[i] += 1
            return np.array(out)

        return policy

    class CountingVec(ZoomVectorEnv):
        steps = 0

        def step(self, actions):
            CountingVec.steps += 1
            return super().step(actions)

    envs = [ZoomEnv(_image(), GT, features=feats, scale=0.5, max_steps=3, training=True, index=i) for i in range(3)]
    steps = run_vector(CountingVec(envs, feats), policy_for(plans, envs))
    # at most one call per step (the last step, where every image ends, needs none), plus the reset
    assert CountingVec.steps <= Counting.calls <= CountingVec.steps + 1
    # The same actions through the Gymnasium API, one image at a time, give the same searches.
    for i in range(3):
        env = ZoomEnv(_image(), GT, features=TinyFeatures(), scale=0.5, max_steps=3, training=True, index=i)
        env.reset()
        for a in plans[i]:
            _, _, term, trunc, info = env.step(int(a))
            if term or trunc:
                if info["image_done"]:
                    break
                env.reset()
        assert env.record("im")["searches"] == envs[i].record("im")["searches"]
    assert steps == sum(len(s["actions"]) for e in envs for s in e.record("im")["searches"])


@pytest.mark.parametrize("record_outputs", [True, False])
def test_the_run_loop_logs_the_agents_outputs_in_the_search_it_acted_in(record_outputs):
    """``run_vector`` (not the env: ``act`` takes the action alone) logs each acting env's row of ``q_fn`` in the
    search that action belongs to, the column after the six Q-values as the predicted IoU, at float32 precision
    (as the records always held them); the score of a triggered search is its last Q-value of the trigger.
    ``record_outputs=False`` (training) logs nothing."""
    counter = iter(range(10_000))
    rng = np.random.default_rng(3)
    given: dict[int, list[list[float]]] = {i: [] for i in range(3)}

    def q_fn(obs):  # distinct rows, float64 as a plain function returns them
        return np.array([[next(counter) + 0.25 * k for k in range(6)] + [0.1] for _ in obs])

    def policy(idx, q, infos):
        for j, i in enumerate(idx):
            given[int(i)].append(q[j].tolist())
        return rng.integers(0, 6, size=len(idx))

    envs = [
        ZoomEnv(_image(), GT, features=TinyFeatures(), scale=0.5, max_steps=3, training=False, index=i)
        for i in range(3)
    ]
    run_vector(
        ZoomVectorEnv(envs, TinyFeatures(), final_observations=False), policy, q_fn, record_outputs=record_outputs
    )
    for i, env in enumerate(envs):
        searches = env.record("im")["searches"]
        assert sum(s["steps"] for s in searches) == len(given[i]) > 0
        if not record_outputs:
            assert all(s["q_values"] is None and s["score"] is None and "predicted_iou" not in s for s in searches)
            continue
        assert [q for s in searches for q in s["q_values"]] == [row[:6] for row in given[i]]
        assert [p for s in searches for p in s["predicted_iou"]] == [float(np.float32(0.1))] * len(given[i])
        for s in searches:
            assert s["score"] == (s["q_values"][-1][TRIGGER] if s["triggered"] else None)
    assert any(s["triggered"] for env in envs for s in env.record("im")["searches"])  # scores were checked
