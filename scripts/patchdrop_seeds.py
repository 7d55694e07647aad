#!/usr/bin/env python
"""Several seeds' PatchDrop test results: a table (each seed and the mean), the accuracy-against-patches curve
over sigma with the random-sampling curve beside it, and the seeds' learning curves.

    python scripts/patchdrop_seeds.py results_fast2_s0 results_fast2_s1 results_fast2_s2 --output results_fast2

Each folder holds one ``python -m zoomrl patchdrop test`` run's ``results.json``. Writes ``seeds.json``,
``accuracy_vs_patches_seeds.png`` and ``training_curves_seeds.png`` (from each run's history: the run folder its
``results.json`` names, or ``--models``) into ``--output``; a missing or damaged results file is a one-line error
(exit code 2), a run without a readable history a warning (the learning curves are then left out).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="+", help="one results folder (or results.json) per seed")
    p.add_argument("--output", default="results_patchdrop_seeds", help="default: %(default)s")
    p.add_argument(
        "--models",
        nargs="+",
        default=None,
        help="each seed's run folder, in the order of the results (default: the model_dir each results.json names)",
    )
    args = p.parse_args(argv)
    from zoomrl.eval.patchdrop import run_summary, table

    try:
        summary = run_summary(args.results, args.output, args.models)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table(summary))
    for reason in summary["learning_curves_missing"]:
        print(f"warning: no learning curves: {reason}", file=sys.stderr)
    curves = f", {args.output}/training_curves_seeds.png" if summary["learning_curves"] else ""
    print(f"wrote {args.output}/seeds.json, {args.output}/accuracy_vs_patches_seeds.png{curves}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
