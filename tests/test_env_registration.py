"""Both environments through ``gymnasium.make``: registered ids, Gymnasium's own checker, and the same searches
as the classes built directly."""

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import zoomrl.envs  # noqa: F401  (registers the ids)
from conftest import TinyFeatures
from zoomrl.envs.active import ActiveEnv
from zoomrl.envs.zoom import ZoomEnv

IMAGE = np.full((64, 96, 3), 70, np.uint8)
GT = np.array([[0, 0, 48, 32], [40, 30, 90, 60]], float)
CASES = [
    ("zoomrl/Zoom-v0", ZoomEnv, dict(scale=0.75, max_steps=4)),
    ("zoomrl/Active-v0", ActiveEnv, dict(max_steps=6, history_length=10, state_steps=True)),
]


@pytest.mark.parametrize("env_id, cls, kwargs", CASES)
def test_make_passes_gymnasiums_checker_and_matches_the_class(env_id, cls, kwargs):
    env = gymnasium.make(env_id, image=IMAGE, gt_boxes=GT, features=TinyFeatures(), **kwargs)
    assert isinstance(env.unwrapped, cls)
    check_env(env.unwrapped, skip_render_check=True)
    direct = cls(IMAGE, GT, features=TinyFeatures(), **kwargs)
    (a, ia), (b, ib) = env.reset(seed=0), direct.reset(seed=0)
    np.testing.assert_array_equal(a, b)
    assert ia == ib
    # the oracle's path, step by step, through the wrapped env and the class: same observations and rewards
    for _ in range(12):
        action = ia["oracle_action"]
        sa, sb = env.step(action), direct.step(action)
        np.testing.assert_array_equal(sa[0], sb[0])
        assert sa[1:] == sb[1:]
        ia = sa[4]
        if sa[2] or sa[3]:
            if ia["image_done"]:
                break
            env.reset()
            direct.reset()


def test_module_prefixed_id_imports_the_registration():
    env = gymnasium.make("zoomrl.envs:zoomrl/Active-v0", image=IMAGE, gt_boxes=GT)
    assert env.action_space.n == 9 and env.observation_space.shape == (90,)
    assert set(zoomrl.envs.ENV_IDS) <= set(gymnasium.registry)
