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

import sys


def main(argv: list[str] | None = None) -> int:
    from zoomrl.eval.seed_files import seeds_main

    return seeds_main(argv, __doc__, "zoomrl.eval.detection_seeds")


if __name__ == "__main__":
    sys.exit(main())
