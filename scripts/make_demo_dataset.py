#!/usr/bin/env python
"""Write the small demo data set (scikit-learn handwritten digits on cluttered canvases, Pascal VOC layout).

Example: ``python scripts/make_demo_dataset.py --output data/demo --seed 0``. See :mod:`zoomrl.data.demo`.
"""

from __future__ import annotations

import argparse  # noqa: E402
import sys

from zoomrl.data.demo import DEFAULT_DEMO_DIR, make_demo_dataset  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(DEFAULT_DEMO_DIR), help=f"target folder (default {DEFAULT_DEMO_DIR})")
    parser.add_argument("--n-trainval", type=int, default=120, help="number of trainval images (default 120)")
    parser.add_argument("--n-test", type=int, default=40, help="number of test images (default 40)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace the output folder if it is not empty")
    args = parser.parse_args(argv)
    try:
        summary = make_demo_dataset(
            args.output, n_trainval=args.n_trainval, n_test=args.n_test, seed=args.seed, overwrite=args.overwrite
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    parts = [
        f"{split} {s['images']} images / {s['objects']} objects / {s['target_objects']} '{summary['class_name']}'"
        for split, s in summary["splits"].items()
    ]
    print(f"demo data set written to {summary['root']}: " + "; ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
