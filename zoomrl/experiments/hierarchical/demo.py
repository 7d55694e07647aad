"""The demo (``bash scripts/demo.sh`` or ``python -m zoomrl hierarchical demo``): train and test both feature
models on the embedded demo set in one process (one backbone, loaded once), then print one table.

The ``demo`` preset (:data:`zoomrl.experiments.hierarchical.config.PRESETS`) is the tuned recipe at a size that
runs within minutes on a 2-core CPU: oracle demonstrations with a behaviour-cloning warm-up, then a few
epsilon-greedy epochs of Double DQN with 3-step returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from zoomrl.eval.tables import ap_row, ap_table
from zoomrl.experiments.hierarchical.config import make_config
from zoomrl.vision.feature_config import VARIANTS


def demo(
    data: Sequence[str],
    *,
    weights: str = "auto",
    seed: int = 0,
    epochs: int | None = None,
    models: Sequence[str] = VARIANTS,
    root: str | Path = ".",
    log: Callable[[str], None] = print,
    show_progress: bool = True,
) -> list[dict[str, Any]]:
    """Train and test each of ``models``; returns one summary row per model (and prints the table)."""
    import time

    from zoomrl.agents.seeding import seed_everything
    from zoomrl.experiments.hierarchical.test import test
    from zoomrl.experiments.hierarchical.train import train
    from zoomrl.vision.backbone import load_backbone
    from zoomrl.vision.features import make_feature_model

    root = Path(root)
    seed_everything(seed)
    backbone = load_backbone(weights, log=log)
    rows = []
    for variant in models:
        config = make_config("demo", variant=variant, class_object="seven", weights=weights, seed=seed, epochs=epochs)
        features = make_feature_model(
            variant, backbone, backbone.fingerprint, batch_size=config.backbone_batch, cache_mb=config.cache_mb, log=log
        )
        features.weights_name = backbone.weights_name  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        log(f"== {variant}: training ({config.epochs} epochs of the demo preset) ==")
        train(
            config,
            data,
            "trainval",
            root / f"models_{variant}",
            features=features,
            log=log,
            show_progress=show_progress,
        )
        t1 = time.perf_counter()
        log(f"== {variant}: testing ==")
        res = test(
            config,
            data,
            "test",
            None,
            root / f"results_{variant}" / "seven",
            model_dir=root / f"models_{variant}",
            bool_draw=True,
            features=features,
            log=log,
            show_progress=show_progress,
        )
        rows.append(
            {
                "model": variant,
                **ap_row(res["agent"], res["whole_image"], res["random"], res["upper_bound"]["scale_0.75"]),
                "train_s": t1 - t0,
                "test_s": time.perf_counter() - t1,
                "pictures": str(root / f"results_{variant}" / "seven" / "pictures"),
            }
        )
    log("")
    log("demo test split, class 'seven' (AP = VOC area AP):")
    for line in ap_table(rows, "upper 3/4"):
        log(line)
    log("pictures of every test search: " + ", ".join(r["pictures"] for r in rows))
    return rows
