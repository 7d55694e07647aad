#!/usr/bin/env python
"""Write the small demo data set (scikit-learn handwritten digits on cluttered canvases, Pascal VOC layout).

Example: ``python scripts/make_demo_dataset.py --output data/demo --seed 0``. See :mod:`zoomrl.data.demo`.

``--dev`` writes the demo's development set instead (the embedded demo's profile, seed 1 by default, trainval
handwriting only, image sets ``devtrain`` and ``devval`` of half the images each): recipes for the demo are chosen
there, never on the demo's test split (README, "Demo").
"""

from __future__ import annotations

import argparse  # noqa: E402
import sys

from zoomrl.data.demo import DEFAULT_DEMO_DIR, make_demo_dataset, make_demo_dev_set  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(DEFAULT_DEMO_DIR), help=f"target folder (default {DEFAULT_DEMO_DIR})")
    parser.add_argument(
        "--n-trainval", type=int, default=None, help="number of trainval images (default 120; --dev: 128)"
    )
    parser.add_argument("--n-test", type=int, default=40, help="number of test images (default 40; not with --dev)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0; --dev: 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace the output folder if it is not empty")
    parser.add_argument(
        "--dev",
        action="store_true",
        help="write the demo's development set instead: the embedded demo's profile, trainval handwriting only, "
        "image sets devtrain and devval (half of --n-trainval each)",
    )
    args = parser.parse_args(argv)
    try:
        if args.dev:
            seed = 1 if args.seed is None else args.seed
            n = 128 if args.n_trainval is None else args.n_trainval
            summary = make_demo_dev_set(
                args.output, seed=seed, n_train=n // 2, n_val=n - n // 2, overwrite=args.overwrite
            )
            dev = summary["dev"]
            print(
                f"demo development set written to {summary['root']}: devtrain {dev['devtrain']} and devval "
                f"{dev['devval']} images (seed {seed}, trainval handwriting)"
            )
            return 0
        summary = make_demo_dataset(
            args.output,
            n_trainval=120 if args.n_trainval is None else args.n_trainval,
            n_test=args.n_test,
            seed=0 if args.seed is None else args.seed,
            overwrite=args.overwrite,
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
