#!/usr/bin/env python
"""Give a run's box regressor, fitted before the clamp, the bounds that today's fit would store.

    python scripts/regressor_bounds.py --run-dir runs/iz/s0/models/raccoon --data ../shared/data/raccoon \\
        --output-dir runs/hclamp/iz/s0/models/raccoon [--image-set trainval]

A regressor file written before session 36 has no ``low``/``high`` and moves windows unclamped
(``zoomrl/agents/box_regressor.py``). The bounds are the range of the regression targets of the boxes the fit used:
the boxes :func:`zoomrl.core.geometry.sample_boxes` drew on the run's training images (its configuration's seed
and validation split, over ``--data``/``--image-set``) at IoU >= ``MIN_IOU`` with an object, so no descriptor is
needed. ``--output-dir`` gets a link to every file of the run folder but ``box_regressor.npz`` (and hidden ones,
the run's lock), which is written
there with the bounds; testing with ``--model-dir`` its parent then shows what the clamp changes at the same
checkpoints and scores (docs/active.md, "The regressor's clamp"). The run folder is not touched. The number of
boxes must match the regressor's own count, or the images are not the run's: one line, exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def bounds(run_dir: str | Path, data: list[str], image_set: str, output_dir: str | Path) -> dict[str, Any]:
    """Write ``output_dir`` (see the module docstring); returns the bounds and the number of boxes."""
    from zoomrl.agents.box_regressor import MIN_IOU, BoxRegressor
    from zoomrl.core.geometry import box_deltas
    from zoomrl.core.io import read_json
    from zoomrl.data.images import ImageStore, load_images
    from zoomrl.experiments.dqn_trainee import split_validation
    from zoomrl.experiments.region_scoring import REGRESSOR_FILE, region_samples, window_itself

    run, out = Path(run_dir), Path(output_dir)
    if run.resolve() == out.resolve():
        raise ValueError(f"--output-dir {out}: must differ from the run folder (which is not touched)")
    config = read_json(run / "config.json", what="configuration")
    if not isinstance(config, dict) or not {"class_object", "seed"} <= set(config):
        raise ValueError(f"{run / 'config.json'}: expected a run's configuration (class_object, seed)")
    regressor = BoxRegressor.load(run / REGRESSOR_FILE)
    class_object, seed = config["class_object"], int(config["seed"])
    images = load_images(data, image_set, class_object, False, None, lambda _: None, progress=False)
    fraction = float(config.get("val_fraction", 0.0))
    train = split_validation(images, fraction, seed)[0] if fraction > 0 else images
    # The fit's own boxes, drawn as it drew them; no descriptor is needed for their targets.
    samples = region_samples(train, ImageStore(), None, class_object, seed, window_itself)
    used = samples.ious >= MIN_IOU
    deltas = box_deltas(samples.boxes[used], samples.objects[used])
    if len(deltas) != regressor.n_examples:
        raise ValueError(
            f"{run / REGRESSOR_FILE}: fitted on {regressor.n_examples} boxes, but these images give {len(deltas)}; "
            f"expected the run's own --data and --image-set"
        )
    regressor.low, regressor.high = deltas.min(axis=0), deltas.max(axis=0)
    out.mkdir(parents=True, exist_ok=True)
    for path in run.iterdir():
        link = out / path.name
        if path.name != REGRESSOR_FILE and not path.name.startswith(".") and not link.exists():
            link.symlink_to(path.resolve())
    regressor.save(out / REGRESSOR_FILE)
    return {"boxes": len(deltas), "low": regressor.low.tolist(), "high": regressor.high.tolist(), "output": str(out)}


def table(result: dict[str, Any]) -> str:
    fmt = ", ".join
    return (
        f"{result['boxes']} boxes; low {fmt(f'{v:.3f}' for v in result['low'])}; "
        f"high {fmt(f'{v:.3f}' for v in result['high'])}; wrote {result['output']}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", required=True, help="a run folder (MODEL_DIR/<class>) with box_regressor.npz")
    p.add_argument("--data", action="append", required=True, help="the training run's VOC root (repeatable)")
    p.add_argument("--image-set", default="trainval", help="the training run's image set (default trainval)")
    p.add_argument("--output-dir", required=True, help="the folder to write (links and the bounded regressor)")
    p.add_argument("--output", default=None, help="also write the result as JSON to this file")
    args = p.parse_args(argv)
    from zoomrl.experiments.common import quiet_backend, report_result

    quiet_backend()
    return report_result(lambda: bounds(args.run_dir, args.data, args.image_set, args.output_dir), table, args.output)


if __name__ == "__main__":
    sys.exit(main())
