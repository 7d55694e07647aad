"""PatchDrop's results as pictures and tables (the scores themselves come from
:mod:`zoomrl.agents.patchdrop.evaluate`, which runs the agent): the issues' targets, the pictures of the patches kept
(:func:`draw`), one test run's accuracy against patches kept (:func:`plot_run`),
and several seeds' ``patchdrop test`` results side by side: each seed and their mean, and the accuracy-against-
patches curve over sigma (stage 2's policies) with the random-sampling curve beside it.

``python scripts/patchdrop_seeds.py RESULTS_DIR ... [--output DIR]`` (each ``RESULTS_DIR`` holds one seed's
``results.json``) prints a Markdown table and writes ``seeds.json`` and ``accuracy_vs_patches_seeds.png``, and
``training_curves_seeds.png`` from the runs' histories (each seed thin, the mean thick).

Learning curves: :func:`history_series` reads a run's per-epoch history (the run driver's, one entry per epoch of
every stage) into the panels of :func:`plot_history` (the run's ``training_curves.png``, written after every
epoch): the classifiers' losses, the greedy policies' reward and patches kept, and the exploration alpha.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoomrl.core.io import write_json

ROWS = ("finetuned", "finetuned_budget", "two_stream")
"""The policies' rows of a test's results: the fine-tuned policy (greedy, keep ``p >= 0.5``), the same policy at the
keep threshold chosen on the validation split for ``--patch-budget`` patches, and the two-stream one."""
LABELS = {
    "finetuned": "PatchDrop (stage 3)",
    "finetuned_budget": "PatchDrop (stage 3), threshold chosen on val for the budget",
    "two_stream": "two-stream (stage 4)",
}
"""Each row's name in the tables and the plots' legends."""


def draw(
    images: np.ndarray,
    labels: np.ndarray,
    actions: np.ndarray,
    masks: np.ndarray,
    preds: np.ndarray,
    grid: int,
    folder: Path,
) -> list[str]:
    """One PNG per image: the image, and what the HR classifier sees (dropped patches dimmed, kept ones framed);
    ``masks``: the actions' pixel masks ``(B, H, W, 1)``, 1 where a patch is kept."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from zoomrl.core.io import atomic_path

    written = []
    for i in range(len(images)):
        img = images[i]
        show = img[..., 0] if img.shape[-1] == 1 else img
        cmap = "gray" if img.shape[-1] == 1 else None
        fig = Figure(figsize=(5.0, 2.8), dpi=100)
        FigureCanvasAgg(fig)
        h, w = img.shape[:2]
        ph, pw = h / grid, w / grid
        for j, (title, picture) in enumerate((("image", show), ("kept patches", None))):
            ax = fig.add_subplot(1, 2, j + 1)
            ax.imshow(show, cmap=cmap, vmin=0, vmax=1, alpha=1.0 if picture is not None else 0.25)
            if picture is None:
                kept = img.astype(np.float32) * masks[i]
                if img.shape[-1] == 1:  # grey: the kept patches over the dimmed image, the dropped ones transparent
                    ax.imshow(np.ma.masked_where(masks[i, ..., 0] == 0, kept[..., 0]), cmap="gray", vmin=0, vmax=1)
                else:
                    ax.imshow(kept)
                for k in np.flatnonzero(actions[i]):
                    ax.add_patch(
                        Rectangle(
                            ((k % grid) * pw - 0.5, (k // grid) * ph - 0.5),
                            pw,
                            ph,
                            fill=False,
                            edgecolor="lime",
                            linewidth=1.2,
                        )
                    )
                title = f"{int(actions[i].sum())}/{grid * grid} kept, predicted {int(preds[i])}"
            else:
                title = f"label {int(labels[i])}"
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.tight_layout()
        path = folder / f"{i:03d}.png"
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png")
        written.append(str(path))
    return written


def summary_line(results: dict[str, Any]) -> str:
    """The test's one line: the classifiers' accuracies and the fine-tuned and two-stream rows."""
    line = (
        f"test: {results['test_images']} images; HR {results['hr_classifier']['accuracy']}%, "
        f"LR {results['lr_classifier']['accuracy']}%"
    )
    for key in ROWS:
        if results.get(key):
            r = results[key]
            at = f" at threshold {r['threshold']:g} (chosen on val for <= {r['budget']:g})" if "threshold" in r else ""
            line += (
                f"; {key} {r['accuracy']}% with {r['mean_patches']:.2f}/{results['patches']} patches{at} "
                f"(random {r['random_accuracy']}%)"
            )
    return line


def targets(finetuned: dict[str, Any], hr_accuracy: float, patches: int) -> dict[str, Any]:
    """The fine-tuned policy's row against the issues' targets: within 1 point of the HR classifier on all
    ``patches``, at most half of them, at least 10 (issue 20: 20) points above random sampling at the same budget."""
    f, hr = finetuned, hr_accuracy
    return {
        "accuracy_gap_to_hr_points": round(hr - f["accuracy"], 2),
        "within_1_point_of_hr": bool(hr - f["accuracy"] <= 1.0),
        "at_most_half_the_patches": bool(f["mean_patches"] <= patches / 2),
        "gain_over_random_points": round(f["accuracy"] - f["random_accuracy"], 2),
        "beats_random_by_10_points": bool(f["accuracy"] - f["random_accuracy"] >= 10.0),
        "beats_random_by_20_points": bool(f["accuracy"] - f["random_accuracy"] >= 20.0),  # issue 20's margin
    }


def load_results(folder: str | Path) -> dict[str, Any]:
    """One seed's ``results.json`` (a folder or the file); a missing or damaged file names itself."""
    path = Path(folder)
    path = path / "results.json" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such results file (run `python -m zoomrl patchdrop test` first)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable results file ({exc})") from None
    if not isinstance(data, dict) or "hr_classifier" not in data:
        raise ValueError(f"{path}: holds no 'hr_classifier' row: not a patchdrop results file")
    data["_path"] = str(path)
    return data


def _mean(values: list[float]) -> float:
    return round(float(np.mean(values)), 2)


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per seed and mean over seeds: the HR classifier, the fine-tuned and two-stream policies (accuracy, patches,
    random at the same budget, gain over random, gap to HR) and each penalty's point of the stage-2 curve."""
    if not results:
        raise ValueError("no results to summarize")
    seeds = [r.get("seed") for r in results]
    out: dict[str, Any] = {
        "seeds": seeds,
        "files": [r.get("_path") for r in results],
        "hr_accuracy": [r["hr_classifier"]["accuracy"] for r in results],
    }
    out["hr_accuracy_mean"] = _mean(out["hr_accuracy"])
    for key in ROWS:
        rows = [r.get(key) for r in results]
        if not all(rows):
            continue
        per = {f: [row[f] for row in rows] for f in ("accuracy", "mean_patches", "random_accuracy")}
        per["gain_over_random"] = [a - b for a, b in zip(per["accuracy"], per["random_accuracy"])]
        per["gap_to_hr"] = [h - a for h, a in zip(out["hr_accuracy"], per["accuracy"])]
        if all("hr_all_patches_accuracy" in row for row in rows):  # the stricter reference: the row's own HR
            per["gap_to_own_hr_all_patches"] = [
                row["hr_all_patches_accuracy"] - a for row, a in zip(rows, per["accuracy"])
            ]
        out[key] = {f: [round(v, 3) for v in vs] for f, vs in per.items()}
        out[key].update({f"{f}_mean": _mean(vs) for f, vs in per.items()})
    curves = [r.get("policy_curve") or [] for r in results]
    sigmas = sorted({row["sigma"] for c in curves for row in c})
    out["curve"] = []
    for s in sigmas:
        pts = [row for c in curves for row in c if row["sigma"] == s]
        out["curve"].append(
            {
                "sigma": s,
                "seeds": len(pts),
                "mean_patches": _mean([p["mean_patches"] for p in pts]),
                "accuracy": _mean([p["accuracy"] for p in pts]),
                "accuracy_std": round(float(np.std([p["accuracy"] for p in pts])), 2),
                "random_accuracy": _mean([p["random_accuracy"] for p in pts]),
            }
        )
    return out


def table(summary: dict[str, Any]) -> str:
    """A Markdown table: one line per seed and the mean, per row of :data:`ROWS`."""
    lines = [
        "| model | seed | patches kept (of 16) | accuracy | random, same budget | gain over random | gap to HR "
        "(stage 1) | gap to own HR, all patches |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key in ROWS:
        if key not in summary:
            continue
        row = summary[key]
        own = row.get("gap_to_own_hr_all_patches")
        for i, seed in enumerate(summary["seeds"]):
            lines.append(
                f"| {LABELS[key]} | {seed} | {row['mean_patches'][i]:.2f} | {row['accuracy'][i]:.2f} | "
                f"{row['random_accuracy'][i]:.2f} | {row['gain_over_random'][i]:+.2f} | "
                f"{row['gap_to_hr'][i]:.2f} | {f'{own[i]:.2f}' if own else '-'} |"
            )
        own_mean = f"{row['gap_to_own_hr_all_patches_mean']:.2f}" if own else "-"
        lines.append(
            f"| **{LABELS[key]}** | **mean** | **{row['mean_patches_mean']:.2f}** | **{row['accuracy_mean']:.2f}** | "
            f"{row['random_accuracy_mean']:.2f} | {row['gain_over_random_mean']:+.2f} | "
            f"{row['gap_to_hr_mean']:.2f} | {own_mean} |"
        )
    lines.append(
        f"| HR classifier (stage 1), all patches | {', '.join(map(str, summary['seeds']))} | 16 | "
        f"{summary['hr_accuracy_mean']:.2f} ({', '.join(f'{v:.2f}' for v in summary['hr_accuracy'])}) | | | | |"
    )
    if summary["curve"]:
        lines += [
            "",
            "| sigma (stage 2) | seeds | patches kept | accuracy (std) | random, same budget |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {c['sigma']:g} | {c['seeds']} | {c['mean_patches']:.2f} | {c['accuracy']:.2f} "
            f"({c['accuracy_std']:.2f}) | {c['random_accuracy']:.2f} |"
            for c in summary["curve"]
        ]
    return "\n".join(lines)


def curve(ax: Any, points: list[dict[str, Any]], label: str, **style: Any) -> None:
    """A stage-2 curve (one point per penalty, annotated with it) and random sampling at the same budgets."""
    ax.plot([p["mean_patches"] for p in points], [p["accuracy"] for p in points], "o-", label=label, **style)
    for p in points:
        ax.annotate(
            f"σ={p['sigma']:g}",
            (p["mean_patches"], p["accuracy"]),
            fontsize=7,
            textcoords="offset points",
            xytext=(3, -10),
        )
    random = [p["random_accuracy"] for p in points]
    ax.plot([p["mean_patches"] for p in points], random, "x:", color="grey", label="random patches, same budget")


def figure() -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.6), dpi=120)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def save(fig: Any, ax: Any, patches: int, path: Path) -> None:
    """Axes labelled (accuracy against patches kept of ``patches``), legend, PNG written to a temporary name."""
    ax.set_xlabel(f"mean patches sampled (of {patches})")
    ax.set_ylabel("test accuracy (%)")
    ax.set_xlim(-0.5, patches + 0.5)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    _save_figure(fig, path)


MARKERS = tuple((key, marker, LABELS[key]) for key, marker in zip(ROWS, ("*", "P", "D")))
"""Each policy row's marker and legend in the accuracy-against-patches plots."""


def plot_seeds(summary: dict[str, Any], results: list[dict[str, Any]], path: Path) -> None:
    """Each seed's stage-2 curve (thin), their mean (thick) and the random-sampling curve beside it; the
    fine-tuned policies as stars."""
    fig, ax = figure()
    for r in results:
        c = r.get("policy_curve") or []
        ax.plot([p["mean_patches"] for p in c], [p["accuracy"] for p in c], "-", color="tab:blue", alpha=0.25)
    if summary["curve"]:
        curve(ax, summary["curve"], f"policy (stage 2), mean of {len(results)} seeds", color="tab:blue")
    for (key, marker, text), color in zip(MARKERS[:2], ("tab:red", "tab:green")):
        if key in summary:
            f = summary[key]
            ax.plot(f["mean_patches"], f["accuracy"], marker, color=color, markersize=10, label=text)
            ax.plot(f["mean_patches"], f["random_accuracy"], marker, color="grey", markersize=7, alpha=0.6)
    hr = summary["hr_accuracy_mean"]
    ax.axhline(hr, color="black", linewidth=0.8, linestyle="--", label="HR classifier, all 16 patches")
    save(fig, ax, 16, path)


def plot_run(results: dict[str, Any], path: Path) -> None:
    """One test run: the stage-2 curve, the fine-tuned and two-stream policies, both classifiers."""
    fig, ax = figure()
    if results.get("policy_curve"):
        curve(ax, results["policy_curve"], "policy (stage 2)")
    for key, marker, text in MARKERS:
        if results.get(key):
            r = results[key]
            ax.plot([r["mean_patches"]], [r["accuracy"]], marker, markersize=11, label=text)
            ax.plot([r["mean_patches"]], [r["random_accuracy"]], marker, markersize=7, color="grey", alpha=0.6)
    hr, lr = results["hr_classifier"], results["lr_classifier"]
    ax.plot([results["patches"]], [hr["accuracy"]], "s", color="black", label="HR classifier, all patches")
    ax.plot([0], [lr["accuracy"]], "v", color="black", label="LR classifier")
    ax.set_title(f"{results['dataset']}: {results['test_images']} test images")
    save(fig, ax, results["patches"], path)


def run_summary(
    folders: list[str], output_dir: str | Path, model_dirs: Sequence[str | Path] | None = None
) -> dict[str, Any]:
    """The seeds' table, curve over sigma and learning curves (``seeds.json``, ``accuracy_vs_patches_seeds.png``,
    ``training_curves_seeds.png``). ``model_dirs``: each seed's run folder, for its history (default: the
    ``model_dir`` its ``results.json`` names); a seed without a readable history is listed in
    ``learning_curves_missing`` and the learning curves are left out."""
    from zoomrl.core.checkpoint import FileDamagedError
    from zoomrl.core.runner import read_history

    results = [load_results(f) for f in folders]
    if model_dirs is not None and len(model_dirs) != len(results):
        raise ValueError(f"--models: {len(model_dirs)} folders for {len(results)} results folders (one per seed)")
    summary = summarize(results)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    dirs = list(model_dirs) if model_dirs is not None else [r.get("model_dir") for r in results]
    histories, missing = [], []
    for d, r in zip(dirs, results):
        try:
            if not d:
                raise ValueError(f"{r['_path']}: names no model_dir")
            histories.append(read_history(d))
        except (OSError, ValueError, FileDamagedError) as exc:
            missing.append(str(exc))
    summary["learning_curves_missing"] = missing
    summary["learning_curves"] = mean_curves(histories) if not missing else None
    write_json(output_dir / "seeds.json", summary)
    plot_seeds(summary, results, output_dir / "accuracy_vs_patches_seeds.png")
    if summary["learning_curves"]:
        plot_seed_curves(summary["learning_curves"], output_dir / "training_curves_seeds.png")
    return summary


_HISTORY_PANELS = {
    "hr_loss": "classifier loss",
    "lr_loss": "classifier loss",
    "greedy_reward": "greedy policy's reward",
    "greedy_patches": "greedy policy's patches kept",
    "alpha": "exploration alpha",
}
"""The history keys drawn (after a ``sigma<s>_`` prefix, stage 2's one policy per penalty) and their panel."""
_SIGMA_KEY = re.compile(r"^sigma([^_]+)_(.+)$")

Series = dict[str, dict[str, tuple[list[int], list[float]]]]
"""``{panel: {label: (run epochs, values)}}``."""


def history_series(history: Sequence[Mapping[str, Any]]) -> Series:
    """A run's history as ``{panel: {label: (run epochs, values)}}``: each of :data:`_HISTORY_PANELS`' keys, labelled
    by its stage, stage 2's penalty (``pretrain σ=0.5``) and, for losses, the classifier (``classifiers HR``,
    ``finetune HR``); panels without a value are left out."""
    out: Series = {panel: {} for panel in dict.fromkeys(_HISTORY_PANELS.values())}
    for i, row in enumerate(history):
        epoch, stage = int(row.get("epoch", i + 1)), str(row.get("stage", "run"))
        for key, value in row.items():
            m = _SIGMA_KEY.match(key)
            sigma, name = (m.group(1), m.group(2)) if m else (None, key)
            panel = _HISTORY_PANELS.get(name)
            if panel is None or value is None:
                continue
            label = stage + (f" σ={sigma}" if sigma else "") + {"hr_loss": " HR", "lr_loss": " LR"}.get(name, "")
            xs, ys = out[panel].setdefault(label, ([], []))
            xs.append(epoch)
            ys.append(float(value))
    return {panel: series for panel, series in out.items() if series}


def mean_curves(histories: Sequence[Sequence[Mapping[str, Any]]]) -> dict[str, dict[str, dict[str, list[float]]]]:
    """Several seeds' :func:`history_series` side by side: ``{panel: {label: {"epochs", "seeds", "mean"}}}`` for
    each label every seed has at the same epochs (``seeds``: one list of values per seed)."""
    per_seed = [history_series(h) for h in histories]
    if not per_seed:
        return {}
    out: dict[str, dict[str, dict[str, list[float]]]] = {}
    for panel, series in per_seed[0].items():
        for label, (epochs, _) in series.items():
            if not all(s.get(panel, {}).get(label, ([], []))[0] == epochs for s in per_seed):
                continue
            values = [s[panel][label][1] for s in per_seed]
            out.setdefault(panel, {})[label] = {
                "epochs": list(epochs),
                "seeds": values,
                "mean": [round(float(v), 4) for v in np.mean(values, axis=0)],
            }
    return out


def _stage_bounds(history: Sequence[Mapping[str, Any]]) -> list[tuple[int, str]]:
    """``(first run epoch, stage)`` of each stage of the history, in order."""
    bounds: list[tuple[int, str]] = []
    for i, row in enumerate(history):
        stage = str(row.get("stage", ""))
        if not bounds or bounds[-1][1] != stage:
            bounds.append((int(row.get("epoch", i + 1)), stage))
    return bounds


def _curve_figure(panels: Sequence[str]) -> tuple[Any, list[Any]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 7.0), dpi=100)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(2, 2, i + 1) for i in range(len(panels))]
    for ax, panel in zip(axes, panels):
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("run epoch")
        ax.grid(alpha=0.3)
    return fig, axes


def _save_figure(fig: Any, path: Path) -> None:
    from zoomrl.core.io import atomic_path

    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")


def plot_history(history: Sequence[Mapping[str, Any]], path: str | Path, title: str = "") -> None:
    """A run's learning curves (:func:`history_series`), one panel each, the stages' starts as dotted lines."""
    series = history_series(history)
    if not series:
        return
    fig, axes = _curve_figure(list(series))
    for ax, curves in zip(axes, series.values()):
        for label, (xs, ys) in curves.items():
            ax.plot(xs, ys, ".-" if len(xs) < 40 else "-", label=label)
        for epoch, stage in _stage_bounds(history):
            ax.axvline(epoch - 0.5, color="grey", linestyle=":", linewidth=0.8)
            ax.text(epoch - 0.4, 1.0, stage, transform=ax.get_xaxis_transform(), fontsize=6, va="top", color="grey")
        ax.legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title)
    _save_figure(fig, Path(path))


def plot_seed_curves(curves: Mapping[str, Mapping[str, Mapping[str, list[float]]]], path: Path) -> None:
    """:func:`mean_curves`: each seed's curve thin, the mean thick, one colour per label."""
    fig, axes = _curve_figure(list(curves))
    for ax, labels in zip(axes, curves.values()):
        for j, (label, c) in enumerate(labels.items()):
            colour = f"C{j % 10}"
            for values in c["seeds"]:
                ax.plot(c["epochs"], values, "-", color=colour, alpha=0.3, linewidth=0.8)
            n = len(c["seeds"])
            ax.plot(c["epochs"], c["mean"], "-", color=colour, linewidth=2, label=f"{label} (mean of {n})")
        ax.legend(fontsize=7, loc="best")
    _save_figure(fig, path)
