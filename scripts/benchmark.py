"""Benchmark both feature models: backbone-only vs end-to-end throughput, cold vs warm cache, batch size 1 vs N.

    python scripts/benchmark.py                      # demo data, 8 test images, HED/ImageNet weights
    python scripts/benchmark.py --data ../shared/data/raccoon --class-object raccoon --image-set test

Prints a table and writes benchmark.json (see README, "Speed"). All four families: ``python -m zoomrl benchmark``.
"""

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", action="append", help="VOC-layout root(s) (default: the embedded demo set)")
    p.add_argument("--image-set", default="test", help="default: %(default)s")
    p.add_argument("--class-object", default="seven", help="default: %(default)s")
    p.add_argument("--images", type=int, default=8, help="images to run (default: %(default)s)")
    p.add_argument("--weights", default="auto", help="backbone weights (default: %(default)s)")
    p.add_argument("--backbone-batch", type=int, default=16, help="default: %(default)s")
    p.add_argument("--test-batch", type=int, default=8, help="images in lockstep (default: %(default)s)")
    p.add_argument("--models", nargs="+", default=["image_zooms", "pool45_crops"], help="default: both")
    p.add_argument("--preset", default="fast", help="DQN schedule of the training measurements (default: %(default)s)")
    p.add_argument("--output", default="benchmark.json", help="default: %(default)s")
    p.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="backbone-only and testing timings, taken in turn, the best of each kept (default: %(default)s)",
    )
    args = p.parse_args()

    from zoomrl.data.demo import default_data_dir
    from zoomrl.experiments.bench.hierarchical import run_benchmark, table

    data = args.data or [str(default_data_dir())]
    if args.repeats < 1:
        print(f"error: --repeats must be at least 1; received {args.repeats}", file=sys.stderr)
        return 2
    try:
        result = run_benchmark(
            data,
            args.image_set,
            args.class_object,
            args.images,
            args.weights,
            args.backbone_batch,
            args.test_batch,
            args.models,
            Path(args.output),
            preset=args.preset,
            repeats=args.repeats,
        )
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table(result))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
