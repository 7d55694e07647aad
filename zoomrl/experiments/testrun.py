"""What the value-based families' testing shares (hierarchical, active): which checkpoint ``--checkpoint`` names,
the saved configuration beside it, and the pictures of ``--bool-draw``. Imports no family."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from zoomrl.data.images import ImageStore
from zoomrl.data.voc import VocImage


def resolve_checkpoint(checkpoint: str | Path | None, model_dir: str | Path | None, class_object: str) -> Path:
    """``--checkpoint``: a path, ``best``, or None for the last finished epoch of ``MODEL_DIR/<class>``."""
    from zoomrl.agents.dqn.checkpoint import latest_weights

    if checkpoint is not None and str(checkpoint) != "best":
        return Path(checkpoint)
    run_dir = Path(model_dir or ".") / class_object
    found = latest_weights(run_dir, "best" if checkpoint == "best" else "latest")
    if found is None:
        from zoomrl.core.checkpoint import previous_run_hint

        raise FileNotFoundError(
            f"no trained checkpoint in {run_dir} (no latest.json); "
            f"train first or pass --checkpoint{previous_run_hint(run_dir)}"
        )
    return found


def saved_config(checkpoint: Path) -> dict[str, Any] | None:
    """The ``config.json`` of the run beside ``checkpoint`` (None when there is none); a damaged one is a
    :class:`~zoomrl.agents.dqn.checkpoint.CheckpointError` naming the file."""
    from zoomrl.agents.dqn.checkpoint import CheckpointError
    from zoomrl.core.io import FileDamagedError, read_json

    saved_path = Path(checkpoint).parent / "config.json"
    if not saved_path.is_file():
        return None
    try:
        return read_json(saved_path, what="configuration")
    except FileDamagedError as exc:
        raise CheckpointError(str(exc)) from None


def draw_pictures(
    images: Sequence[VocImage],
    records: Sequence[dict[str, Any]],
    store: ImageStore,
    out: Path,
    class_object: str,
    label: str,
    show_progress: bool,
) -> None:
    """One picture per image of its searches, ``out/pictures/<image id>.png``, titled ``label | <image id>``."""
    from tqdm import tqdm

    from zoomrl.eval.pictures import draw_search

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


Log = Callable[[str], None]
