#!/usr/bin/env python
"""Several seeds' glimpse test results: one Markdown table (each seed and the mean, per model and path).

    python scripts/glimpse_seeds.py results_glimpse/pool4_raccoon_s0 results_glimpse/pool4_raccoon_s1 \\
        results_glimpse/pool4_raccoon_s2 [--output seeds.json]

Each folder holds one ``python -m zoomrl glimpse test`` run's ``results.json`` (and its ``config.json``, for the
seed). A missing or damaged results file is a one-line error (exit code 2).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="+", help="one results folder (or results.json) per seed")
    p.add_argument("--output", default=None, help="also write the summary as JSON to this file")
    args = p.parse_args(argv)
    from zoomrl.core.io import write_json
    from zoomrl.eval.glimpse_seeds import load_seed, summarize, table

    try:
        summary = summarize([load_seed(f) for f in args.results])
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table(summary))
    if args.output:
        write_json(args.output, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
