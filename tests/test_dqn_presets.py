"""The value-based families' presets resolve to the values their documentation states (the shared DQN recipes of
``agents/dqn/config.py`` included), and the class searched for has one default: the embedded demo set's."""

from __future__ import annotations

import pytest

from zoomrl.experiments.active import config as active
from zoomrl.experiments.hierarchical import config as hierarchical

# Written out by hand from the presets' comments (README "Presets", docs/active.md), not read from the code.
CPU = {
    "learning_rate": 1e-4,
    "minibatch": 32,
    "learning_starts": 64,
    "train_every": 4,
    "target_update_every": 50,
    "double_dqn": True,
}
TINY = {
    "learning_rate": 1e-4,
    "epochs": 2,
    "epsilon_decay": 0.5,
    "minibatch": 16,
    "learning_starts": 16,
    "train_every": 4,
    "replay_size": 200,
    "hidden_units": 64,
    "target_update_every": 0,
    "double_dqn": False,
}
PAPER_DQN = {"learning_rate": 1e-6, "minibatch": 100, "learning_starts": 100, "train_every": 1, "replay_size": 1000}


@pytest.mark.parametrize(
    ("family", "preset", "expected"),
    [
        (hierarchical, "tiny", {**TINY, "episode_batch": 8, "number_of_steps": 4, "test_batch": 32}),
        (active, "tiny", {**TINY, "episode_batch": 8, "test_batch": 8, "number_of_steps": 4, "test_steps": 10}),
        (hierarchical, "baseline", {**CPU, "epochs": 12, "epsilon_decay": 0.1, "episode_batch": 16, "n_step": 1}),
        (hierarchical, "fast", {**CPU, "epochs": 12, "episode_batch": 16, "n_step": 3, "demo_ratio": 0.25}),
        (
            hierarchical,
            "fast2",
            {**CPU, "epochs": 12, "episode_batch": 16, "epsilon_decay": 0.02, "box_regression": True},
        ),
        (hierarchical, "fast", {"box_regression": False}),
        (active, "fast", {**CPU, "epochs": 15, "epsilon_decay": 0.18, "episode_batch": 16, "demo_ratio": 0.0}),
        (active, "fast_roi", {**CPU, "epochs": 15, "epsilon_decay": 0.18, "episode_batch": 16, "features": "roi"}),
        (hierarchical, "paper", {**PAPER_DQN, "epochs": 50, "number_of_steps": 10, "episode_batch": 1}),
        (active, "paper", {**PAPER_DQN, "epochs": 15, "epsilon_decay": 0.18, "number_of_steps": 40}),
    ],
)
def test_preset_values(family, preset: str, expected: dict) -> None:
    cfg = family.make_config(preset)
    assert {name: getattr(cfg, name) for name in expected} == expected
