#!/usr/bin/env python
"""Several seeds' hierarchical or active test results in one Markdown table (each seed and the mean).

    python scripts/detection_seeds.py results_active_roi_s0 results_active_roi_s1 results_active_roi_s2 \\
        [--output seeds.json]

Each folder is one ``--output-dir`` of ``python -m zoomrl hierarchical|active test`` (its ``<class>/results.json``),
or the ``results.json`` itself. Rows: the terminal regions (and the active family's all attended regions) under the
score the test used and under every other score, then the whole image, the random agent and the oracle of the same
runs. A missing or damaged results file is a one-line error (exit code 2).
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
    from zoomrl.eval.detection_seeds import load_seed, summarize, table

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
