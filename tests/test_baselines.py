import numpy as np

from zoomrl.envs.oracles import limit_searches_to_objects, oracle_policy, random_policy, score_oracle
from zoomrl.envs.zoom import TRIGGER
from zoomrl.envs.zoom import ImageEpisode
from zoomrl.envs.vector import run_lockstep


def _episode(gt, scale=0.5, max_searches=3, index=0):
    gt = np.asarray(gt, float)
    return ImageEpisode("im", np.zeros((100, 200, 3), np.uint8), gt, np.zeros(len(gt), bool), scale=scale,
                        max_steps=10, training=False, max_searches=max_searches, index=index)


def test_oracle_walks_to_the_object_and_triggers():
    # object = the top-right quadrant's top-left quadrant: (100, 0)-(150, 25) in a 200x100 image
    ep = _episode([[100, 0, 150, 25]])
    limit_searches_to_objects(ep)
    run_lockstep([ep], oracle_policy)
    rec = ep.record("im")
    assert len(rec["searches"]) == 1  # one object: one search
    s = rec["searches"][0]
    assert s["actions"] == [1, 0, TRIGGER]
    assert s["box"] == [100.0, 0.0, 150.0, 25.0]
    score_oracle([rec])
    assert rec["searches"][0]["score"] == 1.0


def test_oracle_triggers_when_no_child_improves():
    # scale 0.3: children are 60 x 30. Object (0,0,200,40): IoU with the image 8000/20000 = 0.4; the best child,
    # top-left (0,0,60,30), has 1800 / (1800 + 8000 - 1800) = 0.225. Nothing improves: trigger at 0.4.
    ep = _episode([[0, 0, 200, 40]], scale=0.3)
    assert oracle_policy(ep) == TRIGGER
    # with scale 0.5 the top-left child (0,0,100,50) improves it: 4000 / (5000 + 8000 - 4000) = 0.444
    assert oracle_policy(_episode([[0, 0, 200, 40]], scale=0.5)) == 0


def test_oracle_finds_two_objects_in_two_searches():
    ep = _episode([[0, 0, 100, 50], [100, 50, 200, 100]])
    limit_searches_to_objects(ep)
    run_lockstep([ep], oracle_policy)
    boxes = sorted(s["box"] for s in ep.record("im")["searches"])
    assert boxes == [[0.0, 0.0, 100.0, 50.0], [100.0, 50.0, 200.0, 100.0]]


def test_random_policy_is_reproducible_per_image():
    a = [random_policy(3)(_episode([[0, 0, 10, 10]], index=i), None) for i in range(20)]
    b = [random_policy(3)(_episode([[0, 0, 10, 10]], index=i), None) for i in range(20)]
    assert a == b and len(set(a)) > 1
