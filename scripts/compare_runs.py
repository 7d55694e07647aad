#!/usr/bin/env python
"""Compare the agents of several testing runs.

    python scripts/compare_runs.py RUN1/results.json RUN2/results.json [--names a b] [--output DIR]

A ``results.json`` is a dict with key ``"agent"`` (a :func:`zoomrl.eval.detection.evaluate` dict) and optional
``"random"``, ``"upper_bound"`` (dicts of name -> evaluate dict) and ``"config"``. Prints the summary table of
the runs' agents and writes ``compare_pr.png`` into ``--output`` (default: the current folder). A missing or
unreadable file gives a one-line error naming it and exit code 2.
"""

from __future__ import annotations

import argparse  # noqa: E402
import json  # noqa: E402
import os
import sys
from collections.abc import Sequence  # noqa: E402
from typing import Any


class RunFileError(Exception):
    """A results file that cannot be used; the message names the file."""


def load_results(path: str) -> dict[str, Any]:
    """Read one results.json and check that it holds an ``"agent"`` result with recall and precision lists."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise RunFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunFileError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from None
    except json.JSONDecodeError as exc:
        raise RunFileError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("agent"), dict):
        raise RunFileError(f'{path}: expected a JSON object with an "agent" result')
    agent = data["agent"]
    for key in ("recall", "precision"):
        if not isinstance(agent.get(key), list):
            raise RunFileError(f'{path}: the "agent" result has no "{key}" list')
    return data


def default_names(paths: Sequence[str]) -> list[str]:
    """Name each run after the folder holding its results file (the file name when at top level), made unique."""
    names: list[str] = []
    for path in paths:
        folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
        base = folder or os.path.splitext(os.path.basename(path))[0]
        name, i = base, 2
        while name in names:
            name, i = f"{base}-{i}", i + 1
        names.append(name)
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare the agents of several testing runs.")
    parser.add_argument("results", nargs="+", help="results.json files of the runs")
    parser.add_argument("--names", nargs="+", help="one display name per results file")
    parser.add_argument("--output", default=".", help="folder for compare_pr.png (default: current folder)")
    parser.add_argument(
        "--baselines",
        action="store_true",
        help="also list the random agent and the upper bounds of the first results file",
    )
    args = parser.parse_args(argv)

    if args.names is not None and len(args.names) != len(args.results):
        print(f"error: {len(args.names)} names given for {len(args.results)} results files", file=sys.stderr)
        return 2
    names = list(args.names) if args.names is not None else default_names(args.results)
    if len(set(names)) != len(names):
        print("error: the run names must differ", file=sys.stderr)
        return 2

    runs: dict[str, dict[str, Any]] = {}
    baselines: dict[str, dict[str, Any]] = {}
    for name, path in zip(names, args.results):
        try:
            data = load_results(path)
        except RunFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        runs[name] = data["agent"]
        if args.baselines and not baselines:
            if isinstance(data.get("random"), dict):
                baselines["random"] = data["random"]
            for key, value in (data.get("upper_bound") or {}).items():
                baselines[f"upper bound {key.replace('scale_', '')}"] = value

    from zoomrl.eval.detection import summary_table
    from zoomrl.eval.plots import plot_pr_curves

    print(summary_table({**runs, **baselines}))
    try:
        out = plot_pr_curves(runs, os.path.join(args.output, "compare_pr.png"), title="Precision-recall of the agents")
    except OSError as exc:
        print(f"error: cannot write into {args.output}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
