#!/usr/bin/env python
"""How far a box regressor moves near misses onto their object, on a run's validation images, before any agent.

    python scripts/box_regression_check.py --family active --preset fast_roi --data ../shared/data/raccoon \\
        --class-object raccoon [--variant pool45_crops] [--weights hed] [--seed 0] \\
        [--min-iou 0.4 0.5 0.6] [--alphas 1e2 1e3 1e4 1e5] [--output check.json]

The family's feature model of ``--preset`` (``--variant`` for the hierarchy's) describes the boxes
:func:`zoomrl.core.geometry.sample_boxes` draws on the training images and on the validation images of the split
that training holds out (the preset's ``val_fraction`` and ``--seed``), each seen as the agent sees a window. For
each ``--min-iou`` and ``--alphas``, a regressor (:func:`zoomrl.agents.box_regressor.fit_box_regressor`) is fitted
on the training boxes and moves the validation boxes; the table gives, per band of the boxes' IoU with their
object, the share at IoU >= 0.5 before and after and the mean IoU. Near misses (0.3 to 0.5) should become hits,
and hits stay hits. Nothing here reads the test split. Bad input: one line, exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

BANDS = ((0.3, 0.5), (0.5, 0.7), (0.7, 1.01))


def check(
    family: str,
    preset: str,
    data: list[str],
    class_object: str,
    min_ious: list[float],
    alphas: list[float],
    image_set: str = "trainval",
    features: Any = None,
    log: Any = print,
    **overrides: Any,
) -> dict[str, Any]:
    """``{"images": [...], "rows": [{"min_iou", "alpha", "bands": [{"low", "high", "n", "hits_before",
    "hits_after", "iou_before", "iou_after"}]}]}`` (see the module docstring)."""
    import importlib

    import numpy as np

    from zoomrl.agents.box_regressor import fit_box_regressor
    from zoomrl.core.geometry import iou_matrix
    from zoomrl.data.images import ImageStore, load_images
    from zoomrl.experiments.dqn_trainee import split_validation
    from zoomrl.experiments.region_scoring import region_samples

    config_module = importlib.import_module(f"zoomrl.experiments.{family}.config")
    config = config_module.make_config(preset, class_object=class_object, **overrides)
    if config.val_fraction <= 0:
        raise ValueError(f"preset {preset!r}: no validation split (val_fraction 0); pass --val-fraction")
    train_module = importlib.import_module(f"zoomrl.experiments.{family}.train")
    trainee = train_module.ActiveTrainee if family == "active" else train_module.HierarchicalTrainee
    images = load_images(data, image_set, class_object, False, None, log, progress=False)
    train, val = split_validation(images, config.val_fraction, config.seed)
    features, _, _ = trainee.build(config, features, log)
    view, store = trainee.view_of(config), ImageStore()
    fit = region_samples(train, store, features, class_object, config.seed, view)
    held = region_samples(val, store, features, class_object, config.seed + 1, view)
    rows = []
    for min_iou in min_ious:
        for alpha in alphas:
            regressor = fit_box_regressor(*fit[:4], alpha=alpha, min_iou=min_iou)
            moved = regressor.refine(held.boxes, held.descriptors, 10**9, 10**9)  # unclipped: IoU with the object
            after = np.diag(iou_matrix(moved, held.objects)) if len(moved) else np.zeros(0)
            bands = []
            for low, high in BANDS:
                band = (held.ious >= low) & (held.ious < high)
                n = int(band.sum())
                bands.append(
                    {
                        "low": low,
                        "high": min(high, 1.0),
                        "n": n,
                        "hits_before": float((held.ious[band] >= 0.5).mean()) if n else 0.0,
                        "hits_after": float((after[band] >= 0.5).mean()) if n else 0.0,
                        "iou_before": float(held.ious[band].mean()) if n else 0.0,
                        "iou_after": float(after[band].mean()) if n else 0.0,
                    }
                )
            rows.append({"min_iou": min_iou, "alpha": alpha, "bands": bands})
    return {"images": [im.image_id for im in val], "rows": rows}


def table(result: dict[str, Any]) -> str:
    head = " | ".join(f"IoU {b['low']:g}-{b['high']:g}: hits, mean IoU" for b in result["rows"][0]["bands"])
    lines = [f"| min IoU | alpha | {head} |", "| --- | --- |" + " --- |" * len(result["rows"][0]["bands"])]
    for r in result["rows"]:
        cells = " | ".join(
            f"{b['hits_before']:.2f} → **{b['hits_after']:.2f}**, {b['iou_before']:.3f} → {b['iou_after']:.3f}"
            for b in r["bands"]
        )
        lines.append(f"| {r['min_iou']:g} | {r['alpha']:g} | {cells} |")
    n = ", ".join(str(b["n"]) for b in result["rows"][0]["bands"])
    lines.append(f"\n{len(result['images'])} validation images; boxes per band: {n}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", choices=("active", "hierarchical"), required=True)
    p.add_argument("--preset", required=True)
    p.add_argument("--data", action="append", required=True, help="a VOC root (repeatable)")
    p.add_argument("--image-set", default="trainval")
    p.add_argument("--class-object", required=True)
    p.add_argument("--variant", default=None, help="the hierarchy's feature model (image_zooms, pool45_crops)")
    p.add_argument("--weights", default="hed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-fraction", type=float, default=None, help="default: the preset's")
    p.add_argument("--min-iou", type=float, nargs="+", default=[0.4, 0.5, 0.6])
    p.add_argument("--alphas", type=float, nargs="+", default=[1e2, 1e3, 1e4, 1e5])
    p.add_argument("--output", default=None, help="also write the result as JSON to this file")
    args = p.parse_args(argv)
    from zoomrl.experiments.common import quiet_backend, report_result

    quiet_backend()
    overrides: dict[str, Any] = {"weights": args.weights, "seed": args.seed}
    if args.variant:
        overrides["variant"] = args.variant
    if args.val_fraction is not None:
        overrides["val_fraction"] = args.val_fraction
    return report_result(
        lambda: check(
            args.family,
            args.preset,
            args.data,
            args.class_object,
            args.min_iou,
            args.alphas,
            args.image_set,
            **overrides,
        ),
        table,
        args.output,
    )


if __name__ == "__main__":
    sys.exit(main())
