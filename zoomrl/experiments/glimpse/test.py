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
from zoomrl.data.landmarks import detection_rates, normalised_distances, to_pixels
from zoomrl.eval import glimpse_plots
from zoomrl.experiments.glimpse.config import GlimpseConfig
from zoomrl.experiments.glimpse.data import GlimpseData, Split
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


def find_runs(model_dir: Path, models: list[str]) -> dict[str, tuple[Path, dict[str, Any]]]:
    found = {}
    for name in models:
        latest = read_latest(model_dir / name)
        if latest is not None:
            found[name] = (model_dir / name, latest)
    return found


def regression_scores(pred_units: np.ndarray, split: Split, size: int) -> dict[str, Any]:
    d = normalised_distances(to_pixels(pred_units, size), split.points, split.norms)
    return {
        "detection_rate": detection_rates(d),
        "mean_distance": float(d.mean()),
        "median_distance": float(np.median(d)),
    }


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
                res[key] = regression_scores(out, split, size)
        res["monte_carlo"]["samples"] = cfg.mc_samples
        return res, (mean_out, mean_paths[:, 0])
    out = agent.predict(split.images)
    if cfg.task == "classify":
        return {"error": float(np.mean(out.argmax(axis=1) != split.targets))}, None
    return regression_scores(out, split, size), None


def by_model(models: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
    """Each model's ``key`` score for the plot and the summary line; a RAM model's twice, ``<name> mean`` (its mean
    path) and ``<name> MC`` (Monte-Carlo)."""
    out: dict[str, Any] = {}
    for name, scores in models.items():
        if "mean_path" in scores:
            out[f"{name} mean"] = scores["mean_path"][key]
            out[f"{name} MC"] = scores["monte_carlo"][key]
        else:
            out[name] = scores[key]
    return out


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
    runs = find_runs(model_dir, cfg.model_list())
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
    data = GlimpseData(cfg)
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
    for name in tqdm(list(runs), desc="models", unit="model", disable=quiet, leave=False):
        run_dir, latest = runs[name]
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
        results["models"]["centre"] = regression_scores(centre, split, size)
    output_dir.mkdir(parents=True, exist_ok=True)
    results["seconds"] = round(time.time() - t0, 1)
    write_json(output_dir / "results.json", results)
    cfg.save(output_dir / "config.json")
    title = f"{cfg.task} {results['protocol'] or Path(cfg.dataset).name}, {len(split)} test images"
    if cfg.task == "classify":
        errors = by_model(results["models"], "error")
        glimpse_plots.plot_errors(errors, output_dir / "errors.png", title)
        summary = ", ".join(f"{k} {100 * v:.2f}%" for k, v in errors.items())
        log(f"test error on {len(split)} images: {summary}; results in {output_dir / 'results.json'}")
    else:
        rates = by_model(results["models"], "detection_rate")
        glimpse_plots.plot_detection_rates(rates, output_dir / "detection_rates.png", title)
        summary = ", ".join(f"{k} {100 * v['0.10']:.1f}%" for k, v in rates.items())
        log(f"detection rate at 0.10 on {len(split)} images: {summary}; results in {output_dir / 'results.json'}")
    if draw and pictures is not None:
        (outputs, paths), run_cfg = pictures
        n = min(cfg.draw_max, len(split))
        for i in tqdm(range(n), desc="pictures", unit="img", disable=quiet, leave=False):
            if cfg.task == "classify":
                kw = {"title": f"#{i}: predicted {int(outputs[i].argmax())}, truth {int(split.targets[i])}"}
            else:
                pred = to_pixels(outputs[i], size)
                d = float(np.linalg.norm(pred - split.points[i]) / split.norms[i])
                kw = {"title": f"#{i}: normalised distance {d:.3f}", "truth": split.points[i], "prediction": pred}
            glimpse_plots.draw_glimpse_path(
                split.images[i],
                paths[i],
                run_cfg.glimpse_size,
                run_cfg.scales,
                output_dir / "paths" / f"{i:03d}.png",
                **kw,
            )
        log(f"drew {n} glimpse paths in {output_dir / 'paths'}")
    return results
