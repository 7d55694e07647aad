"""The environment, a backbone pass and one DQN training step under a second Keras backend (JAX or PyTorch),
in a subprocess because the backend is fixed at import time. Skipped when neither is installed."""

import importlib.util
import os
import subprocess
import sys

import pytest

from conftest import REPO

SCRIPT = r"""
import sys
sys.path.insert(0, {tests!r})  # conftest's helpers
import keras, numpy as np
assert keras.backend.backend() == {backend!r}, keras.backend.backend()
from conftest import TinyFeatures, square_task
from zoomrl.agents.dqn.agent import DQNAgent
from zoomrl.vision.backbone import load_backbone
from zoomrl.experiments.hierarchical.config import make_config
from zoomrl.envs.zoom import ZoomEnv
from zoomrl.envs.vector import ZoomVectorEnv, run_vector
from zoomrl.vision.features import ImageZooms, Request
from zoomrl.experiments.dqn_loop import dqn_pass, store_transitions
from zoomrl.experiments.hierarchical.train import training_policy

keras.utils.set_random_seed(0)
bb = load_backbone("none", log=lambda m: None)
p4, p5 = bb(np.zeros((1, 64, 96, 3), np.float32))
assert p4.shape == (1, 4, 6, 512) and p5.shape == (1, 2, 3, 512)
_, img, objs = square_task(1, 0)[0]
d = ImageZooms(bb, bb.fingerprint).describe([Request("a", (), img, (0, 0, 64, 64))])
assert d.shape == (1, 25088) and np.isfinite(d).all()
# Every DQN option on: dueling, Double DQN with a target network, 3-step returns, demonstrations with the margin.
cfg = make_config("tiny", class_object="box", hidden_units=16, minibatch=4, learning_starts=4, train_every=1,
                  dueling=True, target_update_every=3, double_dqn=True, n_step=3, demo_ratio=0.5,
                  iou_weight=0.5)
agent = DQNAgent(36 + 24, 6, cfg)
feats = TinyFeatures()
envs = [ZoomEnv(im, np.array([o[1] for o in ob], float), features=feats, scale=0.75, max_steps=4, index=i)
        for i, (_, im, ob) in enumerate(square_task(4, 1))]
run_vector(ZoomVectorEnv(envs, feats), lambda idx, q, infos: np.array([i["oracle_action"] for i in infos]),
           None, store_transitions(agent, True, "demo"))
losses = agent.pretrain(3)
envs = [ZoomEnv(im, np.array([o[1] for o in ob], float), features=feats, scale=0.75, max_steps=4, index=i)
        for i, (_, im, ob) in enumerate(square_task(4, 1))]
_, more, _ = dqn_pass(list(range(4)), lambda idx: [envs[i] for i in idx], training_policy(cfg, 1.0, 0, 0), feats,
                     agent, 4, 1.0, 0)
losses += more
assert agent.transitions > 0 and len(losses) > 3 and all(np.isfinite(losses)), losses
print("ok", keras.backend.backend(), agent.transitions, len(losses))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_second_backend(backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    code = SCRIPT.format(repo=str(REPO), tests=str(REPO / "tests"), backend=backend)
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().startswith(f"ok {backend}")
