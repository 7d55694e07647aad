"""Testing the active agent: the greedy agent, the random agent and the oracle on the same images, then both
detection sets (terminal regions and all attended regions) through the project's evaluation.

Outputs in ``output_dir``: ``detections.json`` (docs/detections_format.md, plus each search's ``start`` box),
``results.json`` (``terminal_regions`` and ``all_attended_regions``: every metric of
:func:`zoomrl.eval.detection.evaluate`; ``recall_vs_proposals``; the baselines; seconds per image; the
configuration, checkpoint and data), ``pr_curve.png``, ``recall_vs_proposals.png``, ``windows_per_object.png`` and,
with ``bool_draw``, one picture per image of the box's path in ``pictures/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoomrl.data.images import ImageStore
from zoomrl.data.voc import VocImage
from zoomrl.envs.active import TRIGGER
from zoomrl.envs.oracles import oracle_policy, random_policy, score_oracle, score_random, whole_image_records
from zoomrl.envs.vector import ZoomVectorEnv, run_vector
from zoomrl.experiments.active.config import MODEL_FIELDS, Config
from zoomrl.experiments.active.evaluation import attended_records, recall_vs_proposals
from zoomrl.experiments.active.train import make_envs
from zoomrl.experiments.testrun import draw_pictures, resolve_checkpoint, saved_config

Log = Callable[[str], None]


def greedy_policy(indices: np.ndarray, q: np.ndarray | None, infos: list[dict[str, Any]]) -> np.ndarray:
    """The action of highest Q-value (ties to the lowest index)."""
    if q is None:
        raise ValueError("the greedy policy needs Q-values")
    return np.argmax(q, axis=1)


def revisit_free_greedy_policy(indices: np.ndarray, q: np.ndarray | None, infos: list[dict[str, Any]]) -> np.ndarray:
    """The greedy policy that never moves to a box already visited in this search (``info["revisit_actions"]``,
    a move that leaves the box where it is included): the action of highest Q-value among the others. The trigger
    is never a revisit, so an action always remains, and a search cannot cycle: each of its moves reaches a new
    box, and one whose every move is a revisit ends by triggering (the number_of_steps restart still bounds it)."""
    if q is None:
        raise ValueError("the greedy policy needs Q-values")
    masked = np.array(q, dtype=np.float64, copy=True)
    for j, info in enumerate(infos):
        masked[j, list(info["revisit_actions"])] = -np.inf
    return np.argmax(masked, axis=1)


def test_policy(config: Config) -> Callable:
    """The agent's test policy: greedy, avoiding revisits with ``avoid_revisits``."""
    return revisit_free_greedy_policy if config.avoid_revisits else greedy_policy


def run_records(
    images: Sequence[VocImage],
    store: ImageStore,
    config: Config,
    policy: Callable,
    batch: int,
    features: Any = None,
    q_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    progress: Callable[[int], None] | None = None,
    oracle: bool = False,
) -> list[dict[str, Any]]:
    """Run ``policy`` on every image (testing behaviour), ``batch`` images in lockstep; one record per image.
    ``oracle``: an image ends once its objects are all found (the oracle knows when)."""
    records: list[dict[str, Any]] = []
    for start in range(0, len(images), batch):
        idx = list(range(start, min(start + batch, len(images))))
        envs = make_envs(images, store, config, False, idx, features, stop_when_found=oracle)
        vec = ZoomVectorEnv(envs, features, config.descriptor_scale, final_observations=False)
        run_vector(vec, policy, q_fn)
        records.extend(env.record(images[i].image_id) for env, i in zip(envs, idx))
        if progress is not None:
            progress(len(idx))
    return records


def evaluate_active(records: Sequence[dict[str, Any]], nms_iou: float) -> dict[str, Any]:
    """Both detection sets and the proposal recall of a run's records."""
    from zoomrl.eval.detection import evaluate

    return {
        "terminal_regions": evaluate(records),
        "all_attended_regions": evaluate(attended_records(records, TRIGGER, nms_iou)),
        "recall_vs_proposals": recall_vs_proposals(records),
    }


def adopt_trained_config(config: Config, checkpoint: Path, log: Log) -> Config:
    """``config`` with the model-defining fields of the run's ``config.json`` (beside ``checkpoint``), saying which
    changed, so a network is tested with the inputs and actions it was trained with."""
    saved = saved_config(checkpoint)
    if saved is None:
        return config
    changes = {k: saved[k] for k in MODEL_FIELDS if k in saved and saved[k] != getattr(config, k)}
    if not changes:
        return config
    log(
        f"testing with the trained network's {', '.join(f'{k}={v}' for k, v in changes.items())} "
        f"(from {Path(checkpoint).parent / 'config.json'})"
    )
    return config.replace(**changes)


def test(
    config: Config,
    data: Sequence[str | Path],
    image_set: str | None,
    checkpoint: str | Path | None,
    output_dir: str | Path,
    *,
    model_dir: str | Path = "models_active",
    max_images: int | None = None,
    skip_bad: bool = False,
    bool_draw: bool = False,
    baselines: bool = True,
    log: Log = print,
    show_progress: bool = True,
    features: Any = None,
) -> dict[str, Any]:
    """Test a trained agent (and the baselines); writes the outputs of the module docstring, returns the results."""
    from tqdm import tqdm

    from zoomrl.agents.dqn.checkpoint import load_weights_checked
    from zoomrl.agents.seeding import seed_everything
    from zoomrl.core.io import write_json
    from zoomrl.data.images import load_images
    from zoomrl.data.voc import LoadReport
    from zoomrl.eval.detection import evaluate, summary_table
    from zoomrl.eval.plots import plot_pr_curves, plot_recall_vs_windows, plot_windows_per_object
    from zoomrl.experiments.active.train import build_agent, feature_model_for, run_meta, state_size_of

    seed_everything(config.seed)
    out = Path(output_dir)
    report = LoadReport()  # what --skip-bad left out goes into results.json: the AP does not cover it
    images = load_images(data, image_set, config.class_object, skip_bad, max_images, log, report=report)
    checkpoint = resolve_checkpoint(checkpoint, model_dir, config.class_object)
    config = adopt_trained_config(config, checkpoint, log)
    features = features if features is not None else feature_model_for(config, log)
    state_size = state_size_of(config, features)
    agent = build_agent(config, state_size)
    load_weights_checked(checkpoint, agent, run_meta(config, state_size))
    store = ImageStore()
    n_objects = sum(len(im.boxes(config.class_object, include_difficult=False)) for im in images)
    log(
        f"testing {checkpoint} on {len(images)} images, {n_objects} '{config.class_object}' objects "
        f"({config.features} features, {config.test_steps} steps per image)"
    )

    t0 = time.perf_counter()
    with tqdm(total=len(images), desc="test", unit="img", disable=not show_progress, leave=False) as bar:
        records = run_records(
            images, store, config, test_policy(config), config.test_batch, features, agent.q_values, progress=bar.update
        )
    seconds = time.perf_counter() - t0
    features.close()
    results: dict[str, Any] = {"agent": evaluate_active(records, config.aar_nms)}
    # The whole image once per image (no run needed): the bar an agent must clear by far.
    whole = whole_image_records(records)
    results["whole_image"] = {"terminal_regions": evaluate(whole), "recall_vs_proposals": recall_vs_proposals(whole)}
    if baselines:
        rand = run_records(images, store, config, random_policy(config.seed, config.num_actions), config.test_batch)
        score_random(rand, config.seed)
        results["random"] = {"terminal_regions": evaluate(rand), "recall_vs_proposals": recall_vs_proposals(rand)}
        oracle = run_records(images, store, config, oracle_policy, config.test_batch, oracle=True)
        score_oracle(oracle)
        results["oracle"] = {"terminal_regions": evaluate(oracle), "recall_vs_proposals": recall_vs_proposals(oracle)}

    meta = {
        "family": "active",
        "config": config.to_dict(),
        "checkpoint": str(checkpoint),
        "weights": getattr(features, "weights_name", config.weights),
        "data": [str(d) for d in data],
        "image_set": image_set,
        "n_images": len(images),
        "skipped": report.skipped_record(config.class_object),
        "n_objects": n_objects,
        "seconds": round(seconds, 2),
        "seconds_per_image": round(seconds / max(len(images), 1), 3),
        "feature_stats": features.stats(),
    }
    write_json(out / "detections.json", {**meta, "images": records}, indent=None)
    write_json(out / "results.json", {**meta, **results})

    agent_res = results["agent"]
    named = {"agent TR": agent_res["terminal_regions"], "agent AAR": agent_res["all_attended_regions"]}
    proposals = {"agent": {"recall_at_windows": agent_res["recall_vs_proposals"]}}
    named["whole image"] = results["whole_image"]["terminal_regions"]
    if baselines:
        named["random TR"] = results["random"]["terminal_regions"]
        named["oracle TR"] = results["oracle"]["terminal_regions"]
        proposals["random"] = {"recall_at_windows": results["random"]["recall_vs_proposals"]}
        proposals["oracle"] = {"recall_at_windows": results["oracle"]["recall_vs_proposals"]}
    plot_pr_curves(named, out / "pr_curve.png", title=f"active ({config.features}), class {config.class_object}")
    plot_recall_vs_windows(
        proposals, out / "recall_vs_proposals.png", title="Recall (IoU >= 0.5) against boxes analysed per image"
    )
    plot_windows_per_object(agent_res["terminal_regions"], out / "windows_per_object.png")
    if bool_draw:
        draw_pictures(images, records, store, out, config.class_object, f"active ({config.features})", show_progress)
    log(summary_table(named))
    rvp = agent_res["recall_vs_proposals"]
    log("recall vs boxes analysed per image: " + ", ".join(f"{k}: {v:.2f}" for k, v in rvp.items()))
    log(
        f"test: {len(images)} images in {seconds:.1f} s ({meta['seconds_per_image']:.2f} s/image); wrote "
        f"{out / 'results.json'}, {out / 'detections.json'} and plots"
        + (f", pictures in {out / 'pictures'}" if bool_draw else "")
    )
    return {**meta, **results}


__all__ = ["test", "run_records", "evaluate_active", "greedy_policy", "revisit_free_greedy_policy", "test_policy"]
