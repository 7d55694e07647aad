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
        ub = res["upper_bound"]["scale_0.75"]["ap_area"]
        rnd = res["random"]["ap_area"]
        whole = res["whole_image"]["ap_area"]
        ap = res["agent"]["ap_area"]
        rows.append(
            {
                "model": variant,
                "ap": ap,
                "random": rnd,
                "whole_image": whole,
                "upper_bound": ub,
                "of_upper_bound": ap / ub if ub else 0.0,
                "times_random": ap / rnd if rnd else float("inf"),
                "median_windows": res["agent"].get("median_windows_per_found_object"),
                "train_s": t1 - t0,
                "test_s": time.perf_counter() - t1,
                "pictures": str(root / f"results_{variant}" / "seven" / "pictures"),
            }
        )
    log("")
    log("demo test split, class 'seven' (AP = VOC area AP):")
    log(
        f"{'model':<14}{'AP':>7}{'whole':>7}{'random':>8}{'upper 3/4':>11}{'AP/upper':>10}{'AP/random':>11}"
        f"{'windows':>9}{'train s':>9}{'test s':>8}"
    )
    for r in rows:
        times = f"{r['times_random']:.1f}" if r["times_random"] != float("inf") else "inf"
        log(
            f"{r['model']:<14}{r['ap']:>7.3f}{r['whole_image']:>7.3f}{r['random']:>8.3f}{r['upper_bound']:>11.3f}"
            f"{r['of_upper_bound']:>10.2f}{times:>11}{r['median_windows'] or 0:>9.0f}{r['train_s']:>9.0f}"
            f"{r['test_s']:>8.0f}"
        )
    log("pictures of every test search: " + ", ".join(r["pictures"] for r in rows))
    return rows
