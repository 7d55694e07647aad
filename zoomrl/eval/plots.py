"""PNG figures of evaluation results and training histories.

Uses matplotlib's Agg renderer through :class:`matplotlib.figure.Figure` directly (no ``pyplot``, so no global
backend state and no display needed). Every function writes its PNG atomically: it saves to
``path + ".tmp.png"`` and then ``os.replace``-s it onto ``path``, creating the parent folder if needed.

Result dicts are those of :func:`zoomrl.eval.detection.evaluate`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FIGSIZE = (6.0, 4.5)
DPI = 120


def _new_figure(figsize: tuple[float, float] = FIGSIZE) -> Figure:
    fig = Figure(figsize=figsize, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike[str]) -> str:
    """Save ``fig`` as PNG to ``path`` atomically and return the path as a string."""
    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    tmp = path + ".tmp.png"
    try:
        fig.tight_layout()
        fig.savefig(tmp, format="png", dpi=DPI)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _ap_text(result: Mapping[str, Any]) -> str:
    parts = []
    if result.get("ap_area") is not None:
        parts.append(f"AP {float(result['ap_area']):.3f}")
    if result.get("ap_voc07") is not None:
        parts.append(f"AP07 {float(result['ap_voc07']):.3f}")
    return ", ".join(parts)


def plot_pr_curves(
    named_results: Mapping[str, Mapping[str, Any]],
    path: str | os.PathLike[str],
    title: str = "Precision-recall",
) -> str:
    """Precision against recall (raw cumulative points, drawn as steps), one curve per named result.

    The legend label of each curve gives its area AP and 11-point AP.
    """
    fig = _new_figure((FIGSIZE[0], FIGSIZE[1] + 0.25 * (len(named_results) + 1) // 2))
    ax = fig.add_subplot(1, 1, 1)
    for name, result in named_results.items():
        recall = list(result.get("recall") or [])
        precision = list(result.get("precision") or [])
        label = f"{name} ({_ap_text(result)})" if _ap_text(result) else str(name)
        ax.step(recall, precision, where="post", label=label, linewidth=1.5)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if named_results:
        # below the axes: curves near precision 1 (the upper bounds) would hide behind a legend inside them
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize="small", frameon=False)
    return _save(fig, path)


def plot_windows_per_object(
    result: Mapping[str, Any], path: str | os.PathLike[str], title: str = "Windows analysed per object found"
) -> str:
    """Bar chart of the number of windows the finding search analysed, per true positive (paper's fig. 8)."""
    hist = {int(k): int(v) for k, v in (result.get("windows_histogram") or {}).items()}
    fig = _new_figure()
    ax = fig.add_subplot(1, 1, 1)
    xs = sorted(hist)
    median = result.get("median_windows_per_found_object")
    label = f"{sum(hist.values())} objects found"
    if median is not None:
        label += f" (median {float(median):.1f} windows)"
    ax.bar(xs, [hist[x] for x in xs], width=0.8, color="tab:blue", edgecolor="black", label=label)
    if xs:
        ax.set_xticks(xs)
    ax.set_xlabel("windows analysed by the search that found the object")
    ax.set_ylabel("number of objects")
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    return _save(fig, path)


def plot_recall_vs_windows(
    named_results: Mapping[str, Mapping[str, Any]],
    path: str | os.PathLike[str],
    title: str = "Recall against windows analysed per image",
) -> str:
    """Recall (IoU match, non-difficult objects) reached within ``k`` windows per image, against ``k`` (log x)."""
    fig = _new_figure()
    ax = fig.add_subplot(1, 1, 1)
    for name, result in named_results.items():
        points = sorted((int(k), float(v)) for k, v in (result.get("recall_at_windows") or {}).items())
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=str(name))
    ax.set_xscale("log")
    ks = sorted({int(k) for r in named_results.values() for k in (r.get("recall_at_windows") or {})})
    if ks:
        ax.set_xticks(ks)
        ax.set_xticklabels([str(k) for k in ks])
        ax.minorticks_off()
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("windows analysed per image (k)")
    ax.set_ylabel("recall within k windows")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    if named_results:
        ax.legend(loc="upper left", fontsize="small")
    return _save(fig, path)


def _series(history: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    for i, row in enumerate(history):
        value = row.get(key)
        if value is None:
            continue
        xs.append(float(row.get("epoch", i)))
        ys.append(float(value))
    return xs, ys


def plot_training_curves(
    history: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], title: str = "Training"
) -> str:
    """2x2 panels against epoch: mean reward; mean final IoU and trigger success; loss; epsilon.

    Each entry of ``history`` has the keys ``epoch``, ``mean_reward``, ``mean_final_iou``, ``trigger_success``,
    ``loss``, ``epsilon``; missing or ``None`` values are skipped. The figure is twice the usual size so each
    panel stays readable.
    """
    fig = _new_figure((2 * FIGSIZE[0] * 0.8, 2 * FIGSIZE[1] * 0.8))
    panels = [
        ("mean reward", [("mean_reward", "mean reward")]),
        ("IoU / success", [("mean_final_iou", "mean final IoU"), ("trigger_success", "trigger success")]),
        ("loss", [("loss", "loss")]),
        ("epsilon", [("epsilon", "epsilon")]),
    ]
    for i, (ylabel, keys) in enumerate(panels):
        ax = fig.add_subplot(2, 2, i + 1)
        for key, label in keys:
            xs, ys = _series(history, key)
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    fig.suptitle(title)
    return _save(fig, path)
