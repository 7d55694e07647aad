"""``python -m zoomrl glimpse test``: measure every trained model of a model folder on the fixed test set.

For each model folder ``<model-dir>/<model>/`` with a finished epoch, the last epoch's weights are loaded and:

* classification: test error; for RAM (learned or random glimpses) twice: the deterministic **mean path**, the
  headline (the model's own first location with ``first_location`` ``centre`` or ``learned``; with ``uniform``
  one draw per image from a NumPy generator seeded with :data:`FIRST_LOCATION_SEED`; then the location network's
  means) and, as an extra, **Monte-Carlo** (``mc_samples`` stochastic paths per image, class probabilities
  averaged: an ensemble at test time, which the whole-image baselines do not get);
* regression: the normalised distance (pixels / box height) and the detection rate at 0.02 ... 0.10, for RAM
  (mean path and Monte-Carlo: predicted locations averaged), the whole-image CNN, and the image centre.

``results.json`` holds all of it, with the test-set size; ``errors.png`` or ``detection_rates.png`` the summary;
with ``--bool-draw``, ``paths/<i>.png`` the mean glimpse path of RAM on the first ``draw_max`` test images.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from zoomrl.agents.seeding import seed_everything
from zoomrl.core.checkpoint import read_latest
from zoomrl.core.io import write_json
from zoomrl.core.runner import WEIGHTS
from zoomrl.data.landmarks import landmark_scores
from zoomrl.data.splits import Split, TaskData
from zoomrl.eval import glimpse_plots
from zoomrl.experiments.glimpse.config import GlimpseConfig
from zoomrl.experiments.glimpse.train import build_agent

FIRST_LOCATION_SEED = 7
MC_SEED = 11


def draw_seeds(seed: int, run_seed: int) -> tuple[int, int]:
    """Seeds of the test's own draws (the uniform first glimpses and the mean path, the Monte-Carlo paths) under
    ``--seed seed`` for a run trained with ``run_seed``. The run's own seed, the default, gives
    :data:`FIRST_LOCATION_SEED` and :data:`MC_SEED`, the streams of every test before ``--seed`` counted at test
    time, so their results stand; another seed moves both by 100 per unit (the two streams never meet)."""
    shift = 100 * (seed - run_seed)
    return (FIRST_LOCATION_SEED + shift) % 2**31, (MC_SEED + shift) % 2**31


def evaluate(
    name: str, agent: Any, split: Split, cfg: GlimpseConfig, seeds: tuple[int, int] = (FIRST_LOCATION_SEED, MC_SEED)
) -> tuple[dict[str, Any], Any]:
    """Scores of one model on ``split``; also what pictures need (mean paths and outputs), or None. ``seeds``: of
    the mean path (and its uniform first glimpses) and of the Monte-Carlo paths (:func:`draw_seeds`)."""
    size = split.images.shape[1]
    if name in ("ram", "random"):
        first = None  # a fixed start (centre, learned mean): the model's own, so the path is deterministic
        if not agent.model.has_fixed_start():
            first = np.random.default_rng(seeds[0]).uniform(-1, 1, size=(len(split), 2))
            first = first.astype(np.float32)
        agent.reseed(seeds[0])
        mean_out, mean_paths = agent.predict(split.images, "mean", first_locations=first)
        agent.reseed(seeds[1])
        mc_out, _ = agent.predict(split.images, "sample", samples=cfg.mc_samples)
        res = {}
        for key, out in (("mean_path", mean_out), ("monte_carlo", mc_out)):
            if cfg.task == "classify":
                res[key] = {"error": float(np.mean(out.argmax(axis=1) != split.targets))}
            else:
                res[key] = landmark_scores(out, split.points, split.norms, size)
        res["monte_carlo"]["samples"] = cfg.mc_samples
        return res, (mean_out, mean_paths[:, 0])
    out = agent.predict(split.images)
    if cfg.task == "classify":
        return {"error": float(np.mean(out.argmax(axis=1) != split.targets))}, None
    return landmark_scores(out, split.points, split.norms, size), None


def test(
    cfg: GlimpseConfig,
    model_dir: str | Path,
    output_dir: str | Path,
    draw: bool = False,
    quiet: bool = False,
    log: Callable[[str], None] = print,
    seed: int | None = None,
) -> dict[str, Any]:
    """Evaluate the models of ``cfg.models`` found in ``model_dir``; write ``results.json`` and pictures.
    ``seed``: of the test's own draws (:func:`draw_seeds`; None: the run's, ``cfg.seed``)."""

    model_dir, output_dir = Path(model_dir), Path(output_dir)
    runs = {name: latest for name in cfg.model_list() if (latest := read_latest(model_dir / name)) is not None}
    if not runs:
        raise FileNotFoundError(
            f"{model_dir}: no trained model ({', '.join(cfg.model_list())}) with a finished "
            f"epoch; run 'python -m zoomrl glimpse train' first"
        )
    seed = cfg.seed if seed is None else seed
    seed_everything(seed)
    seeds = draw_seeds(seed, cfg.seed)
    log(f"test seed {seed} (the run's: {cfg.seed}): first glimpses and mean paths {seeds[0]}, Monte-Carlo {seeds[1]}")
    t0 = time.time()
    data = TaskData(cfg)
    split = data.test()
    size = split.images.shape[1]
    results: dict[str, Any] = {
        "task": cfg.task,
        "dataset": cfg.dataset,
        "headline": "mean_path",
        "first_location": cfg.first_location,
        "protocol": None if cfg.is_voc() else cfg.resolved_protocol(),
        "test_size": len(split),
        "glimpses": cfg.glimpses,
        "models": {},
    }
    pictures = None
    for name, latest in tqdm(runs.items(), desc="models", unit="model", disable=quiet, leave=False):
        run_dir = model_dir / name
        run_cfg = GlimpseConfig.load(run_dir / "config.json")
        agent = build_agent(name, run_cfg, data.image_shape(), data.n_outputs)
        agent.load_weights(run_dir / latest["files"][WEIGHTS])
        scores, extra = evaluate(name, agent, split, cfg, seeds)
        scores["epochs"] = int(latest["epoch"])
        results["models"][name] = scores
        if name == "ram" and extra is not None:
            pictures = (extra, run_cfg)
    if cfg.task == "regress":
        centre = np.zeros((len(split), 2), np.float32)
        results["models"]["centre"] = landmark_scores(centre, split.points, split.norms, size)
    output_dir.mkdir(parents=True, exist_ok=True)
    results["seconds"] = round(time.time() - t0, 1)
    write_json(output_dir / "results.json", results)
    cfg.save(output_dir / "config.json")
    title = f"{cfg.task} {results['protocol'] or Path(cfg.dataset).name}, {len(split)} test images"
    summary = glimpse_plots.plot_summary(cfg.task, results["models"], output_dir, title)
    what = "test error" if cfg.task == "classify" else "detection rate at 0.10"
    log(f"{what} on {len(split)} images: {summary}; results in {output_dir / 'results.json'}")
    if draw and pictures is not None:
        (outputs, paths), run_cfg = pictures
        n = min(cfg.draw_max, len(split))
        bar = lambda r: tqdm(r, desc="pictures", unit="img", disable=quiet, leave=False)  # noqa: E731
        args = (run_cfg.glimpse_size, run_cfg.scales, n, output_dir / "paths", cfg.task, bar)
        glimpse_plots.draw_paths(split, outputs, paths, *args)
        log(f"drew {n} glimpse paths in {output_dir / 'paths'}")
    return results
