"""Pictures of the ``glimpse`` family (Matplotlib, Agg): a glimpse path on its image, training curves, and the
summary charts of a test (error per model; detection rate against normalised distance)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoomrl.core.io import atomic_path
from zoomrl.data.landmarks import to_pixels


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> None:
    plt = _plt()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)


def draw_glimpse_path(
    image: np.ndarray,
    path: np.ndarray,
    glimpse_size: int,
    scales: int,
    out: str | Path,
    title: str = "",
    truth: Sequence[float] | None = None,
    prediction: Sequence[float] | None = None,
) -> None:
    """``image (S, S[, C])``; ``path (T, 2)`` glimpse locations in [-1, 1] units (yellow line, the last glimpse's
    patches as squares); ``truth`` / ``prediction``: landmark pixels (green / red), or None."""
    plt = _plt()
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    h, w = img.shape[:2]
    px = (np.asarray(path, dtype=np.float64) + 1.0) / 2.0 * np.array([w, h])
    fig, ax = plt.subplots(figsize=(3.2, 3.4))
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1, extent=(0, w, h, 0))
    ax.plot(px[:, 0], px[:, 1], "-", color="yellow", lw=1.2)
    ax.scatter(px[:, 0], px[:, 1], c=np.arange(len(px)), cmap="autumn", s=14, zorder=3)
    ax.scatter(px[:1, 0], px[:1, 1], marker="s", facecolors="none", edgecolors="cyan", s=40, zorder=4)
    for k in range(scales):
        side = glimpse_size * 2**k
        x, y = px[-1]
        ax.add_patch(
            plt.Rectangle((x - side / 2, y - side / 2), side, side, fill=False, color="yellow", lw=0.6, alpha=0.7)
        )
    if truth is not None:
        ax.scatter([truth[0]], [truth[1]], marker="+", c="lime", s=80, zorder=5)
    if prediction is not None:
        ax.scatter([prediction[0]], [prediction[1]], marker="x", c="red", s=60, zorder=5)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)
    _save(fig, out)


def plot_training_history(history: Sequence[Mapping[str, Any]], out: str | Path) -> None:
    """One panel per logged quantity against the epoch."""
    plt = _plt()
    keys = [k for k in (history[0] if history else {}) if k not in ("epoch", "seconds")]
    if not keys:
        return
    fig, axes = plt.subplots(1, len(keys), figsize=(3 * len(keys), 2.6), squeeze=False)
    epochs = [h["epoch"] for h in history]
    for ax, k in zip(axes[0], keys):
        ax.plot(epochs, [h.get(k, np.nan) for h in history], ".-")
        ax.set_title(k, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
    fig.tight_layout()
    _save(fig, out)


def plot_errors(errors: Mapping[str, float], out: str | Path, title: str = "") -> None:
    """Bar chart of test error (%) per model."""
    plt = _plt()
    names = list(errors)
    fig, ax = plt.subplots(figsize=(1.2 + 1.0 * len(names), 3))
    ax.bar(names, [100 * errors[n] for n in names], color="tab:blue")
    for i, n in enumerate(names):
        ax.text(i, 100 * errors[n], f"{100 * errors[n]:.1f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("test error (%)")
    ax.set_title(title, fontsize=9)
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right", fontsize=8)
    _save(fig, out)


def plot_detection_rates(rates: Mapping[str, Mapping[str, float]], out: str | Path, title: str = "") -> None:
    """Detection rate (%) against the normalised-distance threshold, one line per model."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4, 3))
    for name, r in rates.items():
        ts = sorted(r, key=float)
        ax.plot([float(t) for t in ts], [100 * r[t] for t in ts], "o-", label=name)
    ax.set_xlabel("normalised distance")
    ax.set_ylabel("detection rate (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    _save(fig, out)


def by_model(models: Mapping[str, Mapping[str, Any]], key: str) -> dict[str, Any]:
    """Each model's ``key`` score for the plot and the summary line; a RAM model's twice, ``<name> mean`` (its mean
    path) and ``<name> MC`` (Monte-Carlo)."""
    out: dict[str, Any] = {}
    for name, scores in models.items():
        if "mean_path" in scores:
            out[f"{name} mean"] = scores["mean_path"][key]
            out[f"{name} MC"] = scores["monte_carlo"][key]
        else:
            out[name] = scores[key]
    return out


def plot_summary(task: str, models: Mapping[str, Mapping[str, Any]], output_dir: Path, title: str) -> str:
    """``errors.png`` (classify) or ``detection_rates.png`` (regress) of a test's per-model scores; returns the
    summary line's per-model scores."""
    if task == "classify":
        errors = by_model(models, "error")
        plot_errors(errors, output_dir / "errors.png", title)
        return ", ".join(f"{k} {100 * v:.2f}%" for k, v in errors.items())
    rates = by_model(models, "detection_rate")
    plot_detection_rates(rates, output_dir / "detection_rates.png", title)
    return ", ".join(f"{k} {100 * v['0.10']:.1f}%" for k, v in rates.items())


def draw_paths(
    split: Any,
    outputs: np.ndarray,
    paths: np.ndarray,
    glimpse_size: int,
    scales: int,
    n: int,
    out_dir: Path,
    task: str,
    progress: Any = iter,
) -> None:
    """``out_dir/NNN.png``: the mean glimpse path on each of the first ``n`` images of ``split`` (images, targets,
    and for regress points and norms), titled with the prediction; ``progress`` wraps the range (a bar)."""
    for i in progress(range(n)):
        if task == "classify":
            kw = {"title": f"#{i}: predicted {int(outputs[i].argmax())}, truth {int(split.targets[i])}"}
        else:
            pred = to_pixels(outputs[i], split.images.shape[1])
            d = float(np.linalg.norm(pred - split.points[i]) / split.norms[i])
            kw = {"title": f"#{i}: normalised distance {d:.3f}", "truth": split.points[i], "prediction": pred}
        draw_glimpse_path(split.images[i], paths[i], glimpse_size, scales, out_dir / f"{i:03d}.png", **kw)
