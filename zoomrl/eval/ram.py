"""Scores of RAM (Mnih et al. 2014) and its whole-image baselines on a fixed test split: test error, or the
landmark scores of :func:`zoomrl.data.landmarks.landmark_scores`. Plain NumPy: the agents are called, not imported.

RAM is scored twice: the deterministic **mean path**, the headline (the model's own first location when it has a
fixed start, else one seeded uniform draw per image; then the location network's means) and, as an extra,
**Monte-Carlo** (``mc_samples`` stochastic paths per image, outputs averaged: an ensemble at test time, which the
whole-image baselines do not get).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from zoomrl.data.landmarks import landmark_scores
from zoomrl.data.splits import Split

FIRST_LOCATION_SEED = 7
MC_SEED = 11


class ScoreSettings(Protocol):
    """What :func:`evaluate` reads of a configuration (the ``glimpse`` family's)."""

    task: str
    mc_samples: int


def draw_seeds(seed: int, run_seed: int) -> tuple[int, int]:
    """Seeds of the test's own draws (the uniform first glimpses and the mean path, the Monte-Carlo paths) under
    ``--seed seed`` for a run trained with ``run_seed``. The run's own seed, the default, gives
    :data:`FIRST_LOCATION_SEED` and :data:`MC_SEED`, the streams of every test before ``--seed`` counted at test
    time, so their results stand; another seed moves both by 100 per unit (the two streams never meet)."""
    shift = 100 * (seed - run_seed)
    return (FIRST_LOCATION_SEED + shift) % 2**31, (MC_SEED + shift) % 2**31


def evaluate(
    name: str, agent: Any, split: Split, cfg: ScoreSettings, seeds: tuple[int, int] = (FIRST_LOCATION_SEED, MC_SEED)
) -> tuple[dict[str, Any], Any]:
    """Scores of model ``name`` (``ram``, ``random``, ``cnn``, ``mlp``) on ``split``; also what pictures need (mean
    outputs and paths), or None. ``seeds``: of the mean path (and its uniform first glimpses) and of the
    Monte-Carlo paths (:func:`draw_seeds`)."""
    size = split.images.shape[1]
    if name in ("ram", "random"):
        first = None  # a fixed start (centre, learned mean): the model's own, so the path is deterministic
        if not agent.model.has_fixed_start():
            first = np.random.default_rng(seeds[0]).uniform(-1, 1, size=(len(split), 2))
            first = first.astype(np.float32)
        agent.reseed(seeds[0])
        mean_out, mean_paths = agent.predict(split.inputs, "mean", first_locations=first)
        agent.reseed(seeds[1])
        mc_out, _ = agent.predict(split.inputs, "sample", samples=cfg.mc_samples)
        res = {}
        for key, out in (("mean_path", mean_out), ("monte_carlo", mc_out)):
            if cfg.task == "classify":
                res[key] = {"error": float(np.mean(out.argmax(axis=1) != split.targets))}
            else:
                res[key] = landmark_scores(out, split.points, split.norms, size)
        res["monte_carlo"]["samples"] = cfg.mc_samples
        return res, (mean_out, mean_paths[:, 0])
    out = agent.predict(split.inputs)
    if cfg.task == "classify":
        return {"error": float(np.mean(out.argmax(axis=1) != split.targets))}, None
    return landmark_scores(out, split.points, split.norms, size), None
