"""Testing: the greedy agent, the random agent and the oracle on the same images, then the evaluation.

:func:`run_records` is the loop; :func:`test` adds data loading, checkpoint loading, outputs and pictures.
Outputs in ``output_dir``: ``detections.json`` (docs/detections_format.md), ``results.json`` (every metric of
:mod:`zoomrl.eval.detection` for the agent and the baselines, with the configuration, checkpoint and data),
``pr_curve.png``, ``windows_per_object.png``, ``recall_vs_windows.png`` and, with ``bool_draw``, one picture per
image in ``pictures/``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from zoomrl.experiments.hierarchical.config import Config
from zoomrl.envs.zoom import ImageEpisode
from zoomrl.vision.features import FeatureModel
from zoomrl.data.images import ImageStore
from zoomrl.envs.vector import Policy, run_lockstep
from zoomrl.experiments.hierarchical.train import make_episodes
from zoomrl.data.voc import VocImage


MODEL_FIELDS = ("hidden_units", "dropout", "history_length", "descriptor_scale")
"""What a trained Q-network fixes: testing takes these from the run's config.json."""


def adopt_trained_config(config: Config, checkpoint: Path, log: Callable[[str], None]) -> Config:
    """``config`` with the model-defining fields of the ``config.json`` beside ``checkpoint``, if there is one
    (saying which changed), so a network is always tested with the sizes and input scale it was trained with."""
    import json

    saved_path = Path(checkpoint).parent / "config.json"
    if not saved_path.is_file():
        return config
    saved = json.loads(saved_path.read_text())
    changes = {k: saved[k] for k in MODEL_FIELDS if k in saved and saved[k] != getattr(config, k)}
    if not changes:
        return config
    log(f"testing with the trained network's {', '.join(f'{k}={v}' for k, v in changes.items())} (from {saved_path})")
    return Config(**{**config.to_dict(), **changes})


def greedy_policy(episode: ImageEpisode, q: np.ndarray | None) -> int:
    """The action with the highest Q-value (ties to the lowest index)."""
    if q is None:
        raise ValueError("the greedy policy needs Q-values")
    return int(np.argmax(q))


def run_records(
    images: Sequence[VocImage], store: ImageStore, config: Config, policy: Policy, batch: int,
    features: FeatureModel | None = None, q_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    scale: float | None = None, progress: Callable[[int], None] | None = None,
    prepare: Callable[[ImageEpisode], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ``policy`` on every image, ``batch`` images in lockstep; one record per image, in input order.

    ``prepare`` may adjust each episode before it runs (the oracle limits its searches to the objects)."""
    cfg = config if scale is None else Config(**{**config.to_dict(), "scale_subregion": scale})
    records: list[dict[str, Any]] = []
    for start in range(0, len(images), batch):
        idx = list(range(start, min(start + batch, len(images))))
        episodes = make_episodes(images, store, cfg, training=False, indices=idx)
        for e in episodes if prepare is not None else ():
            prepare(e)
        run_lockstep(episodes, policy, features, q_fn, descriptor_scale=cfg.descriptor_scale)
        records.extend(e.record(images[i].image_id) for e, i in zip(episodes, idx))
        if progress is not None:
            progress(len(idx))
    return records


def test(
    config: Config,
    data: Sequence[str | Path],
    image_set: str | None,
    checkpoint: str | Path | None,
    output_dir: str | Path,
    *,
    model_dir: str | Path | None = None,
    max_images: int | None = None,
    skip_bad: bool = False,
    bool_draw: bool = False,
    baselines: bool = True,
    log: Callable[[str], None] = print,
    show_progress: bool = True,
    features: FeatureModel | None = None,
) -> dict[str, Any]:
    """Test a trained agent (and the baselines); writes the outputs listed in the module doc, returns results.

    ``features`` replaces the VGG-16 feature model of ``config.variant`` (tests use a cheap one)."""
    from tqdm import tqdm

    from zoomrl.agents.dqn.agent import DQNAgent
    from zoomrl.envs.oracles import limit_searches_to_objects, oracle_policy, random_policy, score_oracle, score_random
    from zoomrl.agents.dqn.checkpoint import latest_weights, load_weights_checked
    from zoomrl.eval.detection import evaluate, summary_table
    from zoomrl.core.io import write_json
    from zoomrl.core.seeding import seed_everything
    from zoomrl.data.images import load_images
    from zoomrl.experiments.hierarchical.train import feature_model_for
    from zoomrl.eval.plots import plot_pr_curves, plot_recall_vs_windows, plot_windows_per_object

    seed_everything(config.seed)
    out = Path(output_dir)
    images = load_images(data, image_set, config.class_object, skip_bad, max_images, log)
    if checkpoint is None:
        run_dir = Path(model_dir or ".") / config.class_object
        checkpoint = latest_weights(run_dir)
        if checkpoint is None:
            raise FileNotFoundError(f"no trained checkpoint in {run_dir} (no latest.json); train first or pass --checkpoint")
    checkpoint = Path(checkpoint)
    config = adopt_trained_config(config, checkpoint, log)
    features = features if features is not None else feature_model_for(config, log)
    agent = DQNAgent(features.descriptor_size + 6 * config.history_length, config, seed=config.seed)
    load_weights_checked(checkpoint, agent, config)
    store = ImageStore()
    log(f"testing {checkpoint} on {len(images)} images ({config.variant}, class '{config.class_object}')")

    t0 = time.perf_counter()
    with tqdm(total=len(images), desc="test", unit="img", disable=not show_progress, leave=False) as bar:
        records = run_records(images, store, config, greedy_policy, config.test_batch, features, agent.q_values,
                              progress=bar.update)
    seconds = time.perf_counter() - t0
    features.close()
    results: dict[str, Any] = {"agent": evaluate(records)}
    if baselines:
        rand = run_records(images, store, config, random_policy(config.seed), config.test_batch)
        score_random(rand, config.seed)
        results["random"] = evaluate(rand)
        results["upper_bound"] = {}
        for scale in (3 / 4, 1 / 2):
            oracle = run_records(images, store, config, oracle_policy, config.test_batch, scale=scale,
                                 prepare=limit_searches_to_objects)
            score_oracle(oracle)
            results["upper_bound"][f"scale_{scale:g}"] = evaluate(oracle)

    meta = {
        "config": config.to_dict(),
        "checkpoint": str(checkpoint),
        "weights": getattr(features, "weights_name", config.weights),
        "data": [str(d) for d in data],
        "image_set": image_set,
        "n_images": len(images),
        "seconds": round(seconds, 2),
        "images_per_second": round(len(images) / max(seconds, 1e-9), 3),
        "feature_stats": features.stats(),
    }
    write_json(out / "detections.json", {**meta, "images": records}, indent=None)
    write_json(out / "results.json", {**meta, **results})

    named = {"agent": results["agent"]}
    if baselines:
        named["random"] = results["random"]
        named.update({f"upper bound {k[6:]}": v for k, v in results["upper_bound"].items()})
    plot_pr_curves(named, out / "pr_curve.png", title=f"{config.variant}, class {config.class_object}")
    plot_recall_vs_windows(named, out / "recall_vs_windows.png")
    plot_windows_per_object(results["agent"], out / "windows_per_object.png")
    if bool_draw:
        from zoomrl.eval.pictures import draw_search

        pictures = out / "pictures"
        for image, record in tqdm(list(zip(images, records)), desc="pictures", unit="img", disable=not show_progress,
                                  leave=False):
            draw_search(store.get(image), record, pictures / f"{image.image_id}.png", config.class_object,
                        title=f"{config.variant} | {image.image_id}")
    log(summary_table(named))
    log(f"wrote {out / 'results.json'}, {out / 'detections.json'} and plots"
        + (f", pictures in {out / 'pictures'}" if bool_draw else ""))
    return {**meta, **results}
