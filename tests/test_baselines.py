import numpy as np

from zoomrl.envs.oracles import oracle_policy, oracle_searches, random_policy, score_oracle
from zoomrl.envs.vector import ZoomVectorEnv, run_vector
from zoomrl.envs.zoom import TRIGGER, ZoomEnv


def _env(gt, scale=0.5, max_searches=3, index=0, training=False):
    gt = np.asarray(gt, float)
    return ZoomEnv(
        np.zeros((100, 200, 3), np.uint8),
        gt,
        scale=scale,
        max_steps=10,
        training=training,
        max_searches=max_searches,
        index=index,
    )


def _run(envs, policy):
    run_vector(ZoomVectorEnv(envs, None, final_observations=False), policy)
    return [e.record("im") for e in envs]


def test_oracle_walks_to_the_object_and_triggers():
    # object = the top-right quadrant's top-left quadrant: (100, 0)-(150, 25) in a 200x100 image
    rec = _run([_env([[100, 0, 150, 25]], max_searches=oracle_searches(1, 3))], oracle_policy)[0]
    assert len(rec["searches"]) == 1  # one object: one search
    s = rec["searches"][0]
    assert s["actions"] == [1, 0, TRIGGER]
    assert s["box"] == [100.0, 0.0, 150.0, 25.0]
    score_oracle([rec])
    assert rec["searches"][0]["score"] == 1.0


def test_oracle_triggers_when_no_child_improves():
    # scale 0.3: children are 60 x 30. Object (0,0,200,40): IoU with the image 8000/20000 = 0.4; the best child,
    # top-left (0,0,60,30), has 1800 / (1800 + 8000 - 1800) = 0.225. Nothing improves: trigger at 0.4.
    env = _env([[0, 0, 200, 40]], scale=0.3)
    _, info = env.reset()
    assert info["oracle_action"] == TRIGGER
    # with scale 0.5 the top-left child (0,0,100,50) improves it: 4000 / (5000 + 8000 - 4000) = 0.444
    _, info = _env([[0, 0, 200, 40]], scale=0.5).reset()
    assert info["oracle_action"] == 0


def test_oracle_finds_two_objects_in_two_searches():
    rec = _run([_env([[0, 0, 100, 50], [100, 50, 200, 100]], max_searches=oracle_searches(2, 3))], oracle_policy)[0]
    boxes = sorted(s["box"] for s in rec["searches"])
    assert boxes == [[0.0, 0.0, 100.0, 50.0], [100.0, 50.0, 200.0, 100.0]]


def test_oracle_searches_one_per_object_within_the_limit():
    assert [oracle_searches(n, 3) for n in (0, 1, 2, 5)] == [1, 1, 2, 3]


def test_random_policy_is_reproducible_per_image_whatever_the_batch():
    def actions(batch):
        envs = [_env([[0, 0, 10, 10]], index=i) for i in range(12)]
        out = []
        for s in range(0, 12, batch):
            run_vector(ZoomVectorEnv(envs[s : s + batch], None, final_observations=False), random_policy(3, 6))
        for e in envs:
            out.append([a for s in e.record("im")["searches"] for a in s["actions"]])
        return out

    one, many = actions(1), actions(5)
    assert one == many
    assert len({tuple(a) for a in one}) > 1  # images differ from one another
