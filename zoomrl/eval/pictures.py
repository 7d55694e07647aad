"""Pictures of the agent's searches: one PNG per tested image.

Uses matplotlib's Agg canvas directly (``Figure`` + ``FigureCanvasAgg``), so importing this module neither
selects nor changes pyplot's global backend, and figures are never registered with pyplot (nothing to leak
when drawing hundreds of images).

Records follow ``docs/detections_format.md``; boxes are ``(x1, y1, x2, y2)`` in pixel-edge coordinates
(0-based, width ``x2 - x1``, see :mod:`zoomrl.core.geometry`); the image is shown with extent ``[0, W] x [0, H]`` so
boxes and pixels line up exactly.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from zoomrl.data.images import ImageStore
from zoomrl.data.voc import VocImage

FIGSIZE = (12.0, 6.0)  # inches
DPI = 100
STEP_CMAP = "plasma"  # its darkest quarter is skipped so step 1 stays visible on dark images
_CMAP_RANGE = (0.25, 1.0)
TEXT_FONT_PT = 8.5
_MAX_TEXT_LINES = 36  # what fits in the text panel at TEXT_FONT_PT


_SEARCH_STYLES = ("-", "--", ":", "-.")


def _action_name(action: Any, names: Sequence[str] | None = None) -> str:
    try:
        return names[int(action)] if names else f"action {int(action)}"
    except (TypeError, ValueError, IndexError):
        return f"action {action}"


def _format_q(q: Sequence[float] | None) -> str:
    if q is None:
        return "Q=n/a"
    return "Q=[" + ", ".join(f"{float(v):.2f}" for v in q) + "]"


def _rect(box: Sequence[float], **kwargs: Any) -> Rectangle:
    x1, y1, x2, y2 = (float(v) for v in box)
    return Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, **kwargs)


def moved_box(search: dict[str, Any]) -> list[float] | None:
    """The detection of a triggered search that a box regressor moved (``refined``, ``--box-regression``): its last
    window moved; None otherwise."""
    refined = search.get("refined")
    return [float(v) for v in refined[-1]] if search.get("triggered") and refined else None


def search_lines(record: dict[str, Any]) -> list[str]:
    """The text panel's lines: one per step, ``"search s, step k: <action> Q=[...]"`` (1-based s and k)."""
    lines: list[str] = []
    names = record.get("action_names")
    for s, search in enumerate(record.get("searches") or [], start=1):
        actions = search.get("actions") or []
        q_values = search.get("q_values")
        for k, action in enumerate(actions, start=1):
            q = q_values[k - 1] if q_values is not None and k - 1 < len(q_values) else None
            lines.append(f"search {s}, step {k}: {_action_name(action, names)} {_format_q(q)}")
        if search.get("triggered"):
            score = search.get("score")
            score_txt = f"{float(score):.2f}" if score is not None else "n/a"
            lines.append(f"  -> search {s} triggered, score {score_txt}")
        else:
            lines.append(f"  -> search {s} ended without a trigger")
    return lines


def draw_search(
    image: np.ndarray,
    record: dict[str, Any],
    path: str | Path,
    class_name: str,
    title: str | None = None,
) -> Path:
    """Draw the searches of one testing ``record`` over ``image`` and save a 12x6 in, 100 dpi PNG at ``path``.

    ``image`` is ``(H, W, 3)`` uint8 RGB (``(H, W)`` grey is accepted). Left: the image with the ground-truth
    boxes (green; dashed when difficult) and, for every search, its sequence of windows coloured by step number
    (search 1 solid lines, search 2 dashed, search 3 dotted)
    (colour bar at the right of the image), the triggered box drawn thick and labelled with its search number, and
    where a box regressor moved it (:func:`moved_box`) the moved box, the detection reported, dashed magenta.
    Right: one line per step, ``"search s, step k: <action name> Q=[6 values]"`` (``Q=n/a`` when the record has no
    Q-values, as for the baselines). The file is written to a temporary name and moved into place. Returns
    ``path``.
    """
    path = Path(path)
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) image, received shape {img.shape}")
    height, width = img.shape[:2]
    searches = list(record.get("searches") or [])
    max_steps = max([len(s.get("windows") or []) for s in searches] + [1])

    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.035, 0.05, 0.42, 0.86))
    tax = fig.add_axes((0.525, 0.02, 0.47, 0.89))
    tax.set_axis_off()

    ax.imshow(img, extent=(0, width, height, 0), interpolation="nearest")
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.tick_params(labelsize=8)
    ax.apply_aspect()  # shrink the axes to the image so the colour bar sits right beside it
    pos = ax.get_position()
    cax = fig.add_axes((pos.x1 + 0.008, pos.y0, 0.012, pos.height))

    for gt in record.get("ground_truth") or []:
        box = gt["box"] if isinstance(gt, dict) else gt
        difficult = bool(gt.get("difficult", False)) if isinstance(gt, dict) else False
        ax.add_patch(_rect(box, edgecolor="lime", linewidth=2.0, linestyle="--" if difficult else "-", zorder=3))

    base = matplotlib.colormaps[STEP_CMAP]
    cmap = ListedColormap(base(np.linspace(*_CMAP_RANGE, 256)), name=f"{STEP_CMAP}_steps")
    norm = BoundaryNorm(np.arange(0.5, max_steps + 1.5), cmap.N)
    for s, search in enumerate(searches, start=1):
        windows = search.get("windows") or []
        style = _SEARCH_STYLES[(s - 1) % len(_SEARCH_STYLES)]  # search 1 solid, 2 dashed, 3 dotted, ...
        for k, window in enumerate(windows, start=1):
            ax.add_patch(_rect(window, edgecolor=cmap(norm(k)), linewidth=1.2, alpha=0.9, zorder=4, linestyle=style))
        if search.get("triggered") and search.get("box") is not None:
            box = search["box"]
            colour = cmap(norm(len(windows))) if windows else "red"
            ax.add_patch(_rect(box, edgecolor=colour, linewidth=3.5, zorder=5))
            ax.add_patch(_rect(box, edgecolor="black", linewidth=0.8, zorder=5))
            ax.text(
                float(box[0]) + 2,
                float(box[1]) + 2,
                f"s{s}",
                color="white",
                fontsize=9,
                va="top",
                ha="left",
                zorder=6,
                bbox={"facecolor": "black", "alpha": 0.6, "pad": 1, "edgecolor": "none"},
            )

        moved = moved_box(search)
        if moved is not None:  # the box regressor's move of the triggered window: the detection reported
            ax.add_patch(_rect(moved, edgecolor="magenta", linewidth=2.0, linestyle=(0, (4, 2)), zorder=6))

    sm = ScalarMappable(norm=norm, cmap=cmap)
    cbar = fig.colorbar(sm, cax=cax, ticks=np.arange(1, max_steps + 1))
    cbar.set_label("step", fontsize=9)
    cbar.ax.tick_params(labelsize=8)

    if title is None:
        title = f"{record.get('image_id', '?')}: class {class_name}"
    fig.suptitle(title, fontsize=12, x=0.02, ha="left", y=0.975)

    n_gt = len(record.get("ground_truth") or [])
    n_diff = sum(1 for g in record.get("ground_truth") or [] if isinstance(g, dict) and g.get("difficult"))
    header = [
        f"{width}x{height} px; ground truth: {n_gt} ({n_diff} difficult)",
        f"{len(searches)} searches, "
        f"{record.get('windows_analysed', sum(len(s.get('actions') or []) for s in searches))} windows analysed"
        + ("  (search 1 solid, 2 dashed, 3 dotted)" if len(searches) > 1 else ""),
        "",
    ]
    lines = search_lines(record)
    if not searches:
        lines = ["(no search recorded)"]
    room = _MAX_TEXT_LINES - len(header)
    if len(lines) > room:
        hidden = len(lines) - (room - 1)
        lines = lines[: room - 1] + [f"... ({hidden} more lines not shown)"]
    tax.text(
        0.0,
        1.0,
        "\n".join(header + lines),
        transform=tax.transAxes,
        va="top",
        ha="left",
        family="monospace",
        fontsize=TEXT_FONT_PT,
        linespacing=1.25,
    )

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        fig.savefig(tmp, format="png", dpi=DPI)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
        fig.clear()
    return path


def draw_pictures(
    images: Sequence[VocImage],
    records: Sequence[dict[str, Any]],
    store: ImageStore,
    out: Path,
    class_object: str,
    label: str,
    show_progress: bool,
) -> None:
    """One picture per image of its searches, ``out/pictures/<image id>.png``, titled ``label | <image id>``
    (``records[k]`` is the record of ``images[k]``)."""
    from tqdm import tqdm

    pictures = out / "pictures"
    for image, record in tqdm(
        list(zip(images, records)), desc="pictures", unit="img", disable=not show_progress, leave=False
    ):
        draw_search(
            store.get(image),
            record,
            pictures / f"{image.image_id}.png",
            class_object,
            title=f"{label} | {image.image_id}",
        )
