#!/usr/bin/env python
"""Choose the region classifier's negatives and L2 strength, and the box regressor's, on an active run's validation
images.

    python scripts/region_scorer_choice.py --run-dir runs/rs/s0/models/raccoon --data ../shared/data/raccoon \\
        [--image-set trainval] [--checkpoint best] [--negatives 0.3 0.5] [--c 1e-5 1e-4 1e-3] \\
        [--box-alphas 1e3 1e4 1e5 [--box-min-iou 0.4 0.5 0.6]] [--clamps off on [--labels window refined]] \\
        [--output choice.json]

The run's agent (``config.json`` and the checkpoint in ``--run-dir``) runs the test protocol once on the run's
validation images (the split its training held out: ``val_fraction`` and ``seed`` of its configuration, over
``--data``/``--image-set``); a classifier is fitted for each pair of ``--negatives`` (boxes below this IoU are
negatives; 0.5 leaves none out) and ``--c`` on the boxes sampled on the run's training images, and the agent's
boxes are scored by each: the table gives all attended regions' AP (area, after the run's suppression) and the
terminal regions' AP by ``region_score`` (and by the best score). With ``--box-alphas``, more rows: the default
classifier with a box regressor (:func:`zoomrl.agents.box_regressor.fit_box_regressor`) for each pair of
``--box-min-iou`` and ``--box-alphas``, the detections at the moved windows. With ``--clamps``, a row per clamp
setting of the default regressor (its moves clamped to its training targets' range, or not) and per label target
of the classifier (``--labels``: ``window``, the default, or ``refined``, ``--region-labels``).
Nothing here reads the test split.
Bad input: one line, exit code 2.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any


def compare(
    run_dir: str | Path,
    data: list[str],
    image_set: str,
    negatives: list[float],
    cs: list[float],
    checkpoint: str = "best",
    features: Any = None,
    log: Any = print,
    box_alphas: list[float] = (),  # type: ignore[assignment]
    box_min_ious: list[float] = (0.5,),  # type: ignore[assignment]
    labels: list[str] = (),  # type: ignore[assignment]
    clamps: list[bool] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    """``{"images": [...], "rows": [{"negative_iou", "c", "aar_ap", "tr_ap"}]}`` (see the module docstring)."""
    from zoomrl.agents.box_regressor import fit_box_regressor
    from zoomrl.agents.dqn.agent import agent_outputs
    from zoomrl.agents.dqn.checkpoint import load_weights_checked
    from zoomrl.agents.region_scorer import NEGATIVE_IOU, C, fit_region_scorer
    from zoomrl.data.images import ImageStore, load_images
    from zoomrl.envs.active import TRIGGER
    from zoomrl.envs.active_runs import run_records, test_policy
    from zoomrl.eval.detection import ap_by_score
    from zoomrl.eval.proposals import attended_by_score
    from zoomrl.experiments.active.config import Config
    from zoomrl.experiments.active.test import TESTER
    from zoomrl.experiments.active.train import ActiveTrainee
    from zoomrl.experiments.dqn_test import resolve_checkpoint
    from zoomrl.experiments.dqn_trainee import split_validation
    from zoomrl.experiments.region_scoring import refined_ious, region_samples, score_records

    run = Path(run_dir)
    config = Config.load(run / "config.json")
    if config.val_fraction <= 0:
        raise ValueError(f"{run / 'config.json'}: the run has no validation split (val_fraction 0)")
    path = resolve_checkpoint(None if checkpoint == "latest" else checkpoint, run.parent, config.class_object)
    images = load_images(data, image_set, config.class_object, False, None, log, progress=False)
    train, val = split_validation(images, config.val_fraction, config.seed)
    features, agent, size = ActiveTrainee.build(config, features, log)
    load_weights_checked(path, agent, ActiveTrainee.run_meta(config, size))
    store = ImageStore()
    records = run_records(val, store, config, test_policy(config), config.test_batch, features, agent_outputs(agent))
    view = TESTER.scorer_view(config)
    samples = region_samples(train, store, features, config.class_object, config.seed, view)
    x, ious = samples.descriptors, samples.ious
    rows = []

    def row(scorer: Any, regressor: Any, **keys: Any) -> None:
        scored = score_records(copy.deepcopy(records), val, store, features, scorer, view, regressor)
        aar = attended_by_score(scored, TRIGGER, config.aar_nms, ["region_score"], config.aar_vote)
        aar = aar["region_score"]["ap_area"]
        tr = ap_by_score(scored)
        rows.append({**keys, "aar_ap": float(aar), "tr_ap": tr["region_score"], "tr_ap_by_score": tr})

    for neg in negatives:
        for c in cs:
            scorer = fit_region_scorer(x, ious, c=c, negative_iou=neg, seed=config.seed)
            row(scorer, None, negative_iou=neg, c=c)
    if box_alphas:
        scorer = fit_region_scorer(x, ious, seed=config.seed)  # the default classifier, NEGATIVE_IOU and C
        for min_iou in box_min_ious:
            for alpha in box_alphas:
                regressor = fit_box_regressor(*samples[:4], alpha=alpha, min_iou=min_iou)
                row(scorer, regressor, negative_iou=NEGATIVE_IOU, c=C, box_min_iou=min_iou, box_alpha=alpha)
    for clamp in clamps:
        regressor = fit_box_regressor(*samples[:4], clamp=clamp)  # the default regressor, MIN_IOU and ALPHA
        for target in labels or ["window"]:
            y = refined_ious(samples) if target == "refined" else ious
            scorer = fit_region_scorer(x, y, seed=config.seed)
            row(scorer, regressor, negative_iou=NEGATIVE_IOU, c=C, region_labels=target, clamp=clamp,
                positives=scorer.n_positives)  # fmt: skip
    return {"checkpoint": str(path), "images": [im.image_id for im in val], "rows": rows}


def table(result: dict[str, Any]) -> str:
    lines = [
        "| negatives below IoU | C | box regression: min IoU, alpha | AAR AP (region_score) | TR AP (region_score) "
        "| TR AP, best score |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["rows"]:
        box = f"{r['box_min_iou']:g}, {r['box_alpha']:g}" if "box_alpha" in r else "none"
        if "region_labels" in r:
            box = f"default, {'clamped' if r['clamp'] else 'unclamped'}; labels {r['region_labels']}"
        best = max(r["tr_ap_by_score"].items(), key=lambda kv: kv[1])
        lines.append(
            f"| {r['negative_iou']:g} | {r['c']:g} | {box} | {r['aar_ap']:.3f} | {r['tr_ap']:.3f} "
            f"| {best[1]:.3f} ({best[0]}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", required=True, help="an active run folder (MODEL_DIR/<class>) with a validation split")
    p.add_argument("--data", action="append", required=True, help="the training run's VOC root (repeatable)")
    p.add_argument("--image-set", default="trainval", help="the training run's image set (default trainval)")
    p.add_argument("--checkpoint", default="best", help="best, latest or a weights file (default best)")
    p.add_argument("--negatives", type=float, nargs="+", default=[0.3, 0.5])
    p.add_argument("--c", type=float, nargs="+", default=[1e-5, 1e-4, 1e-3])
    p.add_argument(
        "--box-alphas", type=float, nargs="*", default=[], help="also rows with a box regressor of each ridge strength"
    )
    p.add_argument("--box-min-iou", type=float, nargs="+", default=[0.5], help="the box regressor's boxes' IoU")
    p.add_argument(
        "--labels",
        nargs="*",
        default=[],
        choices=["window", "refined"],
        help="with --clamps: a classifier of each label target (--region-labels; default window)",
    )
    p.add_argument(
        "--clamps",
        nargs="*",
        default=[],
        choices=["off", "on"],
        help="also rows with the default regressor, its moves unclamped (off) or clamped to its targets' range (on)",
    )
    p.add_argument("--output", default=None, help="also write the result as JSON to this file")
    args = p.parse_args(argv)
    from zoomrl.experiments.common import quiet_backend, report_result

    quiet_backend()  # the backend's start-up lines would bury a one-line error
    return report_result(
        lambda: compare(
            args.run_dir,
            args.data,
            args.image_set,
            args.negatives,
            args.c,
            args.checkpoint,
            box_alphas=args.box_alphas,
            box_min_ious=args.box_min_iou,
            labels=args.labels,
            clamps=[c == "on" for c in args.clamps],
        ),
        table,
        args.output,
    )


if __name__ == "__main__":
    sys.exit(main())
