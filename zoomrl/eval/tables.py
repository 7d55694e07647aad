"""An agent's AP beside its baselines', as one row per run and as a fixed-width text table (plain Python): the
demo's summary (``python -m zoomrl hierarchical demo``), for any family whose test reports the whole image, the
random agent and an upper bound (:func:`zoomrl.eval.detection.evaluate` results)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def ap_row(
    agent: Mapping[str, Any], whole_image: Mapping[str, Any], random: Mapping[str, Any], upper_bound: Mapping[str, Any]
) -> dict[str, Any]:
    """The agent's AP (VOC area) and its baselines', the share of the upper bound's AP it reaches (0 when that is
    0), the multiple of the random agent's (inf when that is 0), and its median windows per found object."""
    ap, rnd, ub = agent["ap_area"], random["ap_area"], upper_bound["ap_area"]
    return {
        "ap": ap,
        "random": rnd,
        "whole_image": whole_image["ap_area"],
        "upper_bound": ub,
        "of_upper_bound": ap / ub if ub else 0.0,
        "times_random": ap / rnd if rnd else float("inf"),
        "median_windows": agent.get("median_windows_per_found_object"),
    }


def ap_table(rows: Sequence[Mapping[str, Any]], upper_label: str) -> list[str]:
    """The header and one line per row: each row an :func:`ap_row` with its ``model`` name and the run's
    ``train_s`` and ``test_s`` seconds; ``upper_label`` heads the upper bound's column."""
    lines = [
        f"{'model':<14}{'AP':>7}{'whole':>7}{'random':>8}{upper_label:>11}{'AP/upper':>10}{'AP/random':>11}"
        f"{'windows':>9}{'train s':>9}{'test s':>8}"
    ]
    for r in rows:
        times = f"{r['times_random']:.1f}" if r["times_random"] != float("inf") else "inf"
        lines.append(
            f"{r['model']:<14}{r['ap']:>7.3f}{r['whole_image']:>7.3f}{r['random']:>8.3f}{r['upper_bound']:>11.3f}"
            f"{r['of_upper_bound']:>10.2f}{times:>11}{r['median_windows'] or 0:>9.0f}{r['train_s']:>9.0f}"
            f"{r['test_s']:>8.0f}"
        )
    return lines
