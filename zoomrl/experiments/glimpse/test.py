"""``python -m zoomrl glimpse test``: measure every trained model of a model folder on the fixed test set.

For each model folder ``<model-dir>/<model>/`` with a finished epoch, the last epoch's weights are loaded and:

* classification: test error; for RAM (learned or random glimpses) twice, mean path (the headline) and
  Monte-Carlo (:mod:`zoomrl.eval.ram`);
* regression: the normalised distance (pixels / box height) and the detection rate at 0.02 ... 0.10, for RAM
  (mean path and Monte-Carlo: predicted locations averaged), the whole-image CNN, and the image centre.

A run trained with ``weight_average`` saved averaged weights: they are the model's figures, and ``unaveraged``
holds the same figures for the last update's raw weights (from the run state).

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

from zoomrl.agents.ram.agent import build_agent
from zoomrl.agents.seeding import seed_everything
from zoomrl.core.checkpoint import read_latest, read_state
from zoomrl.core.io import write_json
from zoomrl.core.runner import STATE_FILE, WEIGHTS
from zoomrl.data.landmarks import landmark_scores
from zoomrl.eval import glimpse_plots
from zoomrl.eval.ram import draw_seeds, evaluate
from zoomrl.experiments.glimpse.config import GlimpseConfig
from zoomrl.experiments.glimpse.features import cell_pixels, task_data


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
    data = task_data(cfg, log)
    split = data.split(cfg.eval_split)
    size = split.images.shape[1]
    results: dict[str, Any] = {
        "task": cfg.task,
        "dataset": cfg.dataset,
        "headline": "mean_path",
        "first_location": cfg.first_location,
        "protocol": None if cfg.is_voc() else cfg.resolved_protocol(),
        "split": cfg.eval_split,
        "test_size": len(split),
        "glimpses": cfg.glimpses,
        "models": {},
    }
    pictures = None
    for name, latest in tqdm(runs.items(), desc="models", unit="model", disable=quiet, leave=False):
        run_dir = model_dir / name
        run_cfg = GlimpseConfig.load(run_dir / "config.json")
        agent = build_agent(name, run_cfg, data.image_shape(), data.n_outputs, run_cfg.task, run_cfg.seed)
        agent.load_weights(run_dir / latest["files"][WEIGHTS])
        scores, extra = evaluate(name, agent, split, cfg, seeds)
        if agent.averaged:  # the weights file holds the average; the run state the last update's weights
            agent.use_raw_weights(read_state(run_dir / STATE_FILE))
            scores["unaveraged"] = evaluate(name, agent, split, cfg, seeds)[0]
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
    title = f"{cfg.task} {results['protocol'] or Path(cfg.dataset).name}, {len(split)} {cfg.eval_split} images"
    summary = glimpse_plots.plot_summary(cfg.task, results["models"], output_dir, title)
    what = "test error" if cfg.task == "classify" else "detection rate at 0.10"
    log(f"{what} on {len(split)} {cfg.eval_split} images: {summary}; results in {output_dir / 'results.json'}")
    if draw and pictures is not None:
        (outputs, paths), run_cfg = pictures
        n = min(cfg.draw_max, len(split))
        bar = lambda r: tqdm(r, desc="pictures", unit="img", disable=quiet, leave=False)  # noqa: E731
        args = (run_cfg.glimpse_size * cell_pixels(run_cfg), run_cfg.scales, n, output_dir / "paths", cfg.task, bar)
        glimpse_plots.draw_paths(split, outputs, paths, *args)
        log(f"drew {n} glimpse paths in {output_dir / 'paths'}")
    return results
