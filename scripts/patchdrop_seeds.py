#!/usr/bin/env python
"""Several seeds' PatchDrop test results: a table (each seed and the mean) and the accuracy-against-patches curve
over sigma with the random-sampling curve beside it.

    python scripts/patchdrop_seeds.py results_fast2_s0 results_fast2_s1 results_fast2_s2 --output results_fast2

Each folder holds one ``python -m zoomrl patchdrop test`` run's ``results.json``. Writes ``seeds.json`` and
``accuracy_vs_patches_seeds.png`` into ``--output``; a missing or damaged file is a one-line error (exit code 2).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="+", help="one results folder (or results.json) per seed")
    p.add_argument("--output", default="results_patchdrop_seeds", help="default: %(default)s")
    args = p.parse_args(argv)
    from zoomrl.eval.patchdrop import run_summary, table

    try:
        summary = run_summary(args.results, args.output)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table(summary))
    print(f"wrote {args.output}/seeds.json and {args.output}/accuracy_vs_patches_seeds.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
