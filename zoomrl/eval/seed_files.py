"""What the several-seeds tables share (``zoomrl/eval/glimpse_seeds.py``, ``zoomrl/eval/detection_seeds.py``): reading
one seed's ``results.json``, and the command line of their scripts (``scripts/*_seeds.py``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def read_results(path: str | Path, command: str) -> dict[str, Any]:
    """The JSON object in ``path``; a missing file names itself and ``command`` (what writes it), a damaged one
    names itself."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such results file (run {command} first)") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable results file ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a results file (expected a JSON object)")
    return data


def seeds_main(argv: list[str] | None, doc: str, module: str) -> int:
    """A ``scripts/*_seeds.py`` command line: each argument one seed's results, ``module``'s ``load_seed``,
    ``summarize`` and ``table`` make the Markdown table; ``--output`` also writes the summary as JSON. A missing
    or damaged file is one line on stderr, exit code 2."""
    import argparse
    import importlib

    from zoomrl.core.io import write_json

    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("results", nargs="+", help="one results folder (or results.json) per seed")
    p.add_argument("--output", default=None, help="also write the summary as JSON to this file")
    args = p.parse_args(argv)
    seeds = importlib.import_module(module)
    try:
        summary = seeds.summarize([seeds.load_seed(f) for f in args.results])
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(seeds.table(summary))
    if args.output:
        write_json(args.output, summary)
    return 0


__all__ = ["read_results", "seeds_main"]
