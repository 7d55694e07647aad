#!/usr/bin/env python
"""Several seeds' glimpse test results: one Markdown table (each seed and the mean, per model and path).

    python scripts/glimpse_seeds.py results_glimpse/pool4_raccoon_s0 results_glimpse/pool4_raccoon_s1 \\
        results_glimpse/pool4_raccoon_s2 [--output seeds.json]

Each folder holds one ``python -m zoomrl glimpse test`` run's ``results.json`` (and its ``config.json``, for the
seed). A missing or damaged results file is a one-line error (exit code 2).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from zoomrl.eval.seed_files import seeds_main

    return seeds_main(argv, __doc__, "zoomrl.eval.glimpse_seeds")


if __name__ == "__main__":
    sys.exit(main())
