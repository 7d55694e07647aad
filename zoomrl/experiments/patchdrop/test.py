"""``python -m zoomrl patchdrop test``: every finished stage's accuracy against the mean number of patches kept, on
the test split (the rows: ``docs/patchdrop.md``; computed by :func:`zoomrl.agents.patchdrop.evaluate.evaluate_stages`).
Writes ``results.json``, ``accuracy_vs_patches.png``, ``config.json`` and, with ``--bool-draw``, ``pictures/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from zoomrl.core.io import write_json
from zoomrl.eval.patchdrop import draw, plot_run, summary_line, targets


def run_test(
    cfg: Any,
    model_dir: str | Path,
    output_dir: str | Path,
    bool_draw: bool = False,
    quiet: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Evaluate every finished stage of the run in ``model_dir`` (``cfg``: its saved configuration, with the test
    settings of the command line; ``cfg.seed`` seeds the random baselines); writes and returns the results."""
    from tqdm import tqdm

    from zoomrl.agents.patchdrop.evaluate import evaluate_stages, evaluation_steps
    from zoomrl.agents.patchdrop.patches import patch_mask
    from zoomrl.agents.patchdrop.stages import read_run
    from zoomrl.agents.seeding import seed_everything
    from zoomrl.data.patch_digits import NUM_CLASSES, load_for

    model_dir, output_dir = Path(model_dir), Path(output_dir)
    groups, finished = read_run(model_dir)
    seed = cfg.seed
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    images, labels = load_for(cfg, "test")
    data = (images, labels, NUM_CLASSES[cfg.dataset])
    val = load_for(cfg, "val") if cfg.patch_budget and "finetune" in finished else None
    with tqdm(total=len(evaluation_steps(cfg, finished)), desc="test", disable=quiet, unit="model") as bar:
        rows, final = evaluate_stages(cfg, groups, finished, data, rng, bar.update, val=val)
    results: dict[str, Any] = {
        "dataset": cfg.dataset,
        "test_images": int(len(images)),
        "patches": rows["patches"],
        "seed": seed,
        "units": "accuracy in percent of the test images",
        "model_dir": str(model_dir),
        **rows,
    }
    if results.get("finetuned"):
        results["targets"] = targets(results["finetuned"], results["hr_classifier"]["accuracy"], rows["patches"])
    if results.get("finetuned_budget"):
        hr = results["hr_classifier"]["accuracy"]
        results["targets_budget"] = targets(results["finetuned_budget"], hr, rows["patches"])
    output_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(output_dir / "config.json")
    plot_run(results, output_dir / "accuracy_vs_patches.png")
    if bool_draw and final is not None and cfg.max_pictures:
        agent, acts, two = final
        n = min(cfg.max_pictures, len(images))
        preds = agent.predict(images[:n], acts[:n], two_stream=two)
        masks = patch_mask(acts[:n], *images.shape[1:3], agent.grid)
        results["pictures"] = draw(images[:n], labels[:n], acts[:n], masks, preds, agent.grid, output_dir / "pictures")
    results["seconds"] = round(time.perf_counter() - t0, 1)
    write_json(output_dir / "results.json", results)
    log(summary_line(results) + f"; results in {output_dir / 'results.json'}")
    return results
