"""End-to-end behaviour of the DQN loop on a tiny synthetic task, with a cheap feature model (no VGG-16)."""

import numpy as np
import pytest

from conftest import TinyFeatures, square_task, write_voc
from zoomrl.agents.dqn.agent import DQNAgent
from zoomrl.core.geometry import iou
from zoomrl.data.images import ImageStore
from zoomrl.data.voc import load_dataset
from zoomrl.envs.oracles import random_policy
from zoomrl.experiments.hierarchical.config import make_config
from zoomrl.experiments.hierarchical.test import greedy_policy, run_records
from zoomrl.experiments.hierarchical.train import train


def _config(**kw):
    values = dict(
        class_object="box",
        hidden_units=64,
        learning_rate=1e-3,
        epochs=10,
        number_of_steps=5,
        episode_batch=8,
        minibatch=32,
        learning_starts=32,
        train_every=1,
        replay_size=2000,
        epsilon_decay=0.1,
        dropout=0.0,
        target_update_every=50,
        double_dqn=True,
    )
    values.update(kw)
    return make_config("tiny", **values)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("squares")
    write_voc(root / "train", square_task(40, seed=0))
    write_voc(root / "test", square_task(30, seed=1), image_set="test")
    return root


def _success(records):
    """Share of images whose first search triggered on the square with IoU >= 0.5."""
    hits = 0
    for r in records:
        s = r["searches"][0]
        hits += bool(s["triggered"] and iou(s["box"], r["ground_truth"][0]["box"]) >= 0.5)
    return hits / len(records)


def _quiet(_msg):
    pass


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    cfg = _config()
    out = train(
        cfg,
        [data / "train"],
        "trainval",
        tmp_path_factory.mktemp("models"),
        features=TinyFeatures(),
        log=_quiet,
        show_progress=False,
    )
    agent = DQNAgent(36 + 24, 6, cfg)
    agent.load_weights(out["weights"])
    return cfg, agent, out


def test_trained_greedy_policy_beats_random(data, trained):
    cfg, agent, _ = trained
    images = load_dataset([data / "test"], "test")
    store = ImageStore()
    greedy = _success(run_records(images, store, cfg, greedy_policy, 8, TinyFeatures(), agent.q_values))
    rand = _success(run_records(images, store, cfg, random_policy(0, 6), 8))
    assert greedy > rand + 0.3, (greedy, rand)


def test_testing_results_do_not_depend_on_batch_size(data, trained):
    cfg, agent, _ = trained
    images = load_dataset([data / "test"], "test")
    store = ImageStore()
    one = run_records(images, store, cfg, greedy_policy, 1, TinyFeatures(), agent.q_values)
    many = run_records(images, store, cfg, greedy_policy, 16, TinyFeatures(), agent.q_values)
    for a, b in zip(one, many):
        assert [s["windows"] for s in a["searches"]] == [s["windows"] for s in b["searches"]]
        assert [s["actions"] for s in a["searches"]] == [s["actions"] for s in b["searches"]]
        for sa, sb in zip(a["searches"], b["searches"]):
            np.testing.assert_allclose(sa["q_values"], sb["q_values"], rtol=1e-4, atol=1e-4)


def test_training_is_reproducible_and_resume_is_exact(data, tmp_path):
    cfg = _config(epochs=3)
    straight = train(
        cfg,
        [data / "train"],
        "trainval",
        tmp_path / "a",
        features=TinyFeatures(),
        log=_quiet,
        show_progress=False,
        max_images=16,
    )
    again = train(
        _config(epochs=3),
        [data / "train"],
        "trainval",
        tmp_path / "b",
        features=TinyFeatures(),
        log=_quiet,
        show_progress=False,
        max_images=16,
    )
    first = train(
        _config(epochs=2),
        [data / "train"],
        "trainval",
        tmp_path / "c",
        features=TinyFeatures(),
        log=_quiet,
        show_progress=False,
        max_images=16,
    )
    resumed = train(
        _config(epochs=3),
        [data / "train"],
        "trainval",
        tmp_path / "c",
        features=TinyFeatures(),
        log=_quiet,
        show_progress=False,
        max_images=16,
        resume=True,
    )
    assert len(first["history"]) == 2 and len(resumed["history"]) == 3

    def weights(path):
        agent = DQNAgent(36 + 24, 6, cfg)
        agent.load_weights(path)
        return agent.model.get_weights()

    for w1, w2, w3 in zip(weights(straight["weights"]), weights(again["weights"]), weights(resumed["weights"])):
        np.testing.assert_array_equal(w1, w2)
        np.testing.assert_array_equal(w1, w3)
    strip = lambda h: [{k: v for k, v in e.items() if k not in ("seconds", "images_per_second")} for e in h]  # noqa: E731
    assert strip(straight["history"]) == strip(resumed["history"])
