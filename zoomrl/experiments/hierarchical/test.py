"""Testing the hierarchical agent: the greedy agent, the random agent and the oracle on the same images, then the
evaluation.

:func:`run_records` is the loop; :func:`test` adds data loading, checkpoint loading, outputs and pictures.
Outputs in ``output_dir``: ``detections.json`` (docs/detections_format.md), ``results.json`` (every metric of
:mod:`zoomrl.eval.detection` for the agent and the baselines, with the configuration, checkpoint and data),
``pr_curve.png``, ``windows_per_object.png``, ``recall_vs_windows.png`` and, with ``bool_draw``, one picture per
image in ``pictures/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from zoomrl.data.images import ImageStore
from zoomrl.envs.oracles import (
    oracle_policy,
    random_policy,
    score_oracle,
    score_random,
    whole_image_records,
)
from zoomrl.envs.zoom import NUM_ACTIONS
from zoomrl.experiments.hierarchical.config import MODEL_FIELDS, Config
from zoomrl.experiments.hierarchical.search import (  # noqa: F401 - greedy_policy, run_records re-exported
    agent_outputs,
    greedy_policy,
    make_envs,
    run_records,
)
from zoomrl.experiments.testrun import draw_pictures, resolve_checkpoint, saved_config
from zoomrl.vision.features import FeatureModel
from zoomrl.vision.pooling import pooled

Log = Callable[[str], None]


def adopt_trained_config(config: Config, checkpoint: Path, log: Log) -> Config:
    """``config`` with the model-defining fields of the ``config.json`` beside ``checkpoint``, if there is one
    (saying which changed), so a network is always tested with the sizes and input scale it was trained with.
    A different hierarchy (scale) is refused: the actions would mean other children; a different step limit is
    allowed and said."""
    from zoomrl.agents.dqn.checkpoint import CheckpointError

    saved = saved_config(checkpoint)
    if saved is None:
        return config
    if "scale_subregion" in saved and abs(float(saved["scale_subregion"]) - config.scale_subregion) > 1e-9:
        raise CheckpointError(
            f"{checkpoint}: trained with --scale-subregion {saved['scale_subregion']:g}, this test "
            f"asks for {config.scale_subregion:g}; pass the training value"
        )
    if saved.get("number_of_steps") not in (None, config.number_of_steps):
        log(
            f"note: testing with {config.number_of_steps} steps per search; the network was trained with "
            f"{saved['number_of_steps']}"
        )
    changes = {k: saved[k] for k in MODEL_FIELDS if k in saved and saved[k] != getattr(config, k)}
    if not changes:
        return config
    log(
        f"testing with the trained network's {', '.join(f'{k}={v}' for k, v in changes.items())} "
        f"(from {Path(checkpoint).parent / 'config.json'})"
    )
    return config.replace(**changes)


def validation_score(checkpoint: Path, available: Sequence[str], log: Log) -> str:
    """``--score auto``: the detection score the run's validation chose for ``checkpoint`` (``validation.json``
    beside it: the best epoch's for ``best.weights.h5``, epoch k's for ``epoch_<k>.weights.h5``). Without a
    validation record, the trigger's margin (else its Q-value), said in one line."""
    import re

    from zoomrl.core.io import FileDamagedError, read_json
    from zoomrl.experiments.hierarchical.train import VALIDATION_FILE

    fallback = "trigger_advantage" if "trigger_advantage" in available else "trigger_q"
    path = Path(checkpoint).parent / VALIDATION_FILE
    record = None
    if path.is_file():
        try:
            record = read_json(path, what="validation record")
        except FileDamagedError as exc:
            log(f"note: {exc}")
    chosen = None
    if isinstance(record, dict):
        name = Path(checkpoint).name
        m = re.fullmatch(r"epoch_(\d+)\.weights\.h5", name)
        if name.startswith("best.") and record.get("best"):
            chosen = record["best"].get("score")
        elif m:
            chosen = next((e.get("score") for e in record.get("epochs", []) if e.get("epoch") == int(m.group(1))), None)
    if chosen is None or chosen not in available:
        log(
            f"note: --score auto: no validation choice for {checkpoint} (train with --val-fraction); scoring by "
            f"{fallback}"
        )
        return fallback
    log(f"--score auto: {chosen}, chosen on the run's validation images ({path})")
    return chosen


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
    log: Log = print,
    show_progress: bool = True,
    features: FeatureModel | None = None,
) -> dict[str, Any]:
    """Test a trained agent (and the baselines); writes the outputs listed in the module doc, returns results.

    ``features`` replaces the VGG-16 feature model of ``config.variant`` (tests use a cheap one)."""
    from tqdm import tqdm

    from zoomrl.agents.dqn.agent import DQNAgent
    from zoomrl.agents.dqn.checkpoint import load_weights_checked
    from zoomrl.agents.seeding import seed_everything
    from zoomrl.core.io import write_json
    from zoomrl.data.images import load_images
    from zoomrl.data.voc import LoadReport
    from zoomrl.eval.detection import evaluate, summary_table
    from zoomrl.eval.plots import plot_pr_curves, plot_recall_vs_windows, plot_windows_per_object
    from zoomrl.experiments.hierarchical.train import feature_model_for, run_meta

    seed_everything(config.seed)
    out = Path(output_dir)
    report = LoadReport()  # what --skip-bad left out goes into results.json: the AP does not cover it
    images = load_images(data, image_set, config.class_object, skip_bad, max_images, log, report=report)
    checkpoint = resolve_checkpoint(checkpoint, model_dir, config.class_object)
    config = adopt_trained_config(config, checkpoint, log)
    features = features if features is not None else feature_model_for(config, log)
    features = pooled(features, config.descriptor_pool)
    state_size = features.descriptor_size + NUM_ACTIONS * config.history_length
    agent = DQNAgent(state_size, NUM_ACTIONS, config, seed=config.seed)
    load_weights_checked(checkpoint, agent, run_meta(config, state_size))
    store = ImageStore()
    log(f"testing {checkpoint} on {len(images)} images ({config.variant}, class '{config.class_object}')")

    t0 = time.perf_counter()
    with tqdm(total=len(images), desc="test", unit="img", disable=not show_progress, leave=False) as bar:
        records = run_records(
            images, store, config, greedy_policy, config.test_batch, features, agent_outputs(agent), progress=bar.update
        )
    seconds = time.perf_counter() - t0
    features.close()
    from zoomrl.eval.detection import available_scores, rescored

    by_score = {name: rescored(records, name) for name in available_scores(records)}
    if config.score == "auto":
        config = config.replace(score=validation_score(checkpoint, list(by_score), log))
    if config.score not in by_score:
        raise ValueError(
            f"detection score '{config.score}' is not available for {checkpoint} (its records can be "
            f"scored by {', '.join(by_score) or 'nothing'}); predicted_iou needs a network trained "
            f"with --iou-weight > 0"
        )
    records = by_score[config.score]
    results: dict[str, Any] = {"agent": evaluate(records), "score": config.score}
    results["agent_by_score"] = {}
    for name, recs in by_score.items():
        ev = evaluate(recs)
        results["agent_by_score"][name] = {"ap_area": ev["ap_area"], "ap_voc07": ev["ap_voc07"]}
    # The whole image once per image: no run needed, so every test reports it (issue 17's "do nothing" bar).
    results["whole_image"] = evaluate(whole_image_records(records))
    if baselines:
        rand = run_records(images, store, config, random_policy(config.seed, NUM_ACTIONS), config.test_batch)
        score_random(rand, config.seed)
        results["random"] = evaluate(rand)
        results["upper_bound"] = {}
        for scale in (3 / 4, 1 / 2):
            oracle = run_records(images, store, config, oracle_policy, config.test_batch, scale=scale, oracle=True)
            score_oracle(oracle)
            results["upper_bound"][f"scale_{scale:g}"] = evaluate(oracle)

    meta = {
        "config": config.to_dict(),
        "checkpoint": str(checkpoint),
        "weights": getattr(features, "weights_name", config.weights),
        "data": [str(d) for d in data],
        "image_set": image_set,
        "n_images": len(images),
        "skipped": report.skipped_record(config.class_object),
        "seconds": round(seconds, 2),
        "images_per_second": round(len(images) / max(seconds, 1e-9), 3),
        "feature_stats": features.stats(),
    }
    write_json(out / "detections.json", {**meta, "images": records}, indent=None)
    write_json(out / "results.json", {**meta, **results})

    named = {"agent": results["agent"], "whole image": results["whole_image"]}
    if baselines:
        named["random"] = results["random"]
        named.update({f"upper bound {k[6:]}": v for k, v in results["upper_bound"].items()})
    plot_pr_curves(named, out / "pr_curve.png", title=f"{config.variant}, class {config.class_object}")
    plot_recall_vs_windows(named, out / "recall_vs_windows.png")
    plot_windows_per_object(results["agent"], out / "windows_per_object.png")
    if bool_draw:
        draw_pictures(images, records, store, out, config.class_object, config.variant, show_progress)
    log(summary_table(named))
    log(
        "agent AP (area) by detection score: "
        + ", ".join(
            f"{name} {v['ap_area']:.3f}" + (" (used)" if name == config.score else "")
            for name, v in results["agent_by_score"].items()
        )
    )
    log(
        f"wrote {out / 'results.json'}, {out / 'detections.json'} and plots"
        + (f", pictures in {out / 'pictures'}" if bool_draw else "")
    )
    return {**meta, **results}
