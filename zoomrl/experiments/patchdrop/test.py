"""``python -m zoomrl patchdrop test``: accuracy against the mean number of patches kept, on the test split.

Reads the trained model folder (its ``config.json`` fixes the data and networks) and writes into the output folder
``results.json``, ``accuracy_vs_patches.png``, ``config.json`` and, with ``--bool-draw``, ``pictures/<i>.png`` for
the first test images. Accuracies are percentages over all test images. Rows:

* ``hr_classifier``: stage 1's HR classifier with all 16 patches; ``lr_classifier``: stage 1's LR classifier;
* ``policy_curve``: each stage-2 policy (one per penalty sigma, HR classifier of stage 1), greedy (``p >= 0.5``);
* ``finetuned``: stage 3's policy and HR classifier (PatchDrop); ``two_stream``: stage 4's policy with the
  two-stream output;
* every policy row's ``random_accuracy``: the same classifier on the same number of patches per image, chosen
  uniformly at random (mean over ``random_draws`` draws).

``targets`` checks the fine-tuned policy against the issue's targets: within 1 point of the HR classifier, at most
half of the patches, at least 10 (and issue 20's 20) points above random sampling.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from zoomrl.core.io import write_json
from zoomrl.eval.patchdrop import (
    accuracy,
    classifier_rows,
    draw,
    evaluate_policy,
    hr_scores,
    plot_run,
    summary_line,
    targets,
)


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

    from zoomrl.agents.patchdrop.stages import model_after, read_groups
    from zoomrl.agents.seeding import seed_everything
    from zoomrl.core.checkpoint import read_latest
    from zoomrl.data.patch_digits import NUM_CLASSES, load_for

    model_dir, output_dir = Path(model_dir), Path(output_dir)
    latest = read_latest(model_dir)
    if latest is None:
        raise FileNotFoundError(f"{model_dir}: no finished epoch (latest.json); train first")
    groups, finished = read_groups(model_dir / latest["files"]["weights.h5"])
    if "classifiers" not in finished:
        raise FileNotFoundError(f"{model_dir}: stage 1 (classifiers) has not finished; nothing to test")
    seed = cfg.seed
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    images, labels = load_for(cfg, "test")
    batch, draws = cfg.eval_batch, cfg.random_draws

    def agent_after(stage: str, sigma: float, classifiers: tuple | None = None) -> Any:
        return model_after(cfg, groups, stage, sigma, images.shape[1:], NUM_CLASSES[cfg.dataset], seed, classifiers)

    base = agent_after("classifiers", cfg.pretrain_sigma)
    steps = ["classifiers"]
    if "pretrain" in finished:
        steps += [f"pretrain sigma {s:g}" for s in cfg.sigma_curve]
    steps += [s for s in ("finetune", "two_stream") if s in finished]
    results: dict[str, Any] = {
        "dataset": cfg.dataset,
        "test_images": int(len(images)),
        "patches": base.patches,
        "seed": seed,
        "units": "accuracy in percent of the test images",
        "model_dir": str(model_dir),
    }
    final = None
    with tqdm(total=len(steps), desc="test", disable=quiet, unit="model") as bar:
        results.update(classifier_rows(base, images, labels, batch))
        bar.update()
        if "pretrain" in finished:
            results["policy_curve"] = []
            for s in cfg.sigma_curve:
                agent = agent_after("pretrain", s, classifiers=(base.hr, base.lr))
                row, acts = evaluate_policy(agent, images, labels, batch, draws, rng)
                results["policy_curve"].append(row)
                final = (agent, acts, False)
                bar.update()
        for stage, key, sigma in (
            ("finetune", "finetuned", cfg.finetune_sigma),
            ("two_stream", "two_stream", cfg.two_stream_sigma),
        ):
            if stage not in finished:
                continue
            agent = agent_after(stage, sigma)
            row, acts = evaluate_policy(agent, images, labels, batch, draws, rng, two_stream=stage == "two_stream")
            row["hr_all_patches_accuracy"] = accuracy(hr_scores(agent, images, None, batch).argmax(1), labels)
            results[key] = row
            final = (agent, acts, stage == "two_stream")
            bar.update()
    if results.get("finetuned"):
        results["targets"] = targets(results["finetuned"], results["hr_classifier"]["accuracy"], base.patches)
    output_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(output_dir / "config.json")
    plot_run(results, output_dir / "accuracy_vs_patches.png")
    if bool_draw and final is not None and cfg.max_pictures:
        agent, acts, two = final
        n = min(cfg.max_pictures, len(images))
        preds = agent.predict(images[:n], acts[:n], two_stream=two)
        results["pictures"] = draw(images[:n], labels[:n], acts[:n], preds, agent.grid, output_dir / "pictures")
    results["seconds"] = round(time.perf_counter() - t0, 1)
    write_json(output_dir / "results.json", results)
    log(summary_line(results) + f"; results in {output_dir / 'results.json'}")
    return results
