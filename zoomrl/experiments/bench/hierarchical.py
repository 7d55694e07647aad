"""Where the time goes in the hierarchical family on real images (``scripts/benchmark.py``): backbone-only
throughput against end-to-end testing and training, cold and warm caches.

Everything is measured in one process, on the same images, so the ratios compare like with like. The agent's
Q-network is the paper's (25112 -> 1024 -> 1024 -> 6) with untrained weights: speed does not depend on them.
The DQN schedule is the preset's (``fast`` by default: minibatch 32 every 4 steps; ``paper``: minibatch 100
every step, whose 0.35 s updates dominate a warm-cache epoch on a CPU).
"""

from __future__ import annotations

import importlib
import platform
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoomrl.agents.dqn.agent import DQNAgent
from zoomrl.agents.seeding import seed_everything
from zoomrl.data.images import ImageStore, load_images
from zoomrl.data.voc import VocImage
from zoomrl.envs.zoom import NUM_ACTIONS
from zoomrl.vision.features import INPUT_SIZE, FeatureModel, ImageZooms

Config = Any  # experiments.hierarchical.config.Config: the family is reached by name (see _family)


def _family(name: str) -> Any:
    """A module of the hierarchical family, by name: the benchmark is a tool beside the families, and a family
    package imports no other (tests/test_layering.py), so it reaches them as ``python -m zoomrl`` does."""
    return importlib.import_module(f"zoomrl.experiments.hierarchical.{name}")


def _peak_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


def _device() -> str:
    import keras

    backend = keras.backend.backend()
    device = "cpu"
    try:
        if backend == "jax":
            import jax

            device = str(jax.devices()[0])
        elif backend == "torch":
            import torch

            device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        elif backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            device = gpus[0].name if gpus else "cpu"
    except Exception:  # noqa: BLE001 - device naming is informative only
        pass
    import os

    return f"{device} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def _backbone_throughput(features: FeatureModel, images: Sequence[VocImage], store: ImageStore, n: int) -> float:
    """Units per second of the bare backbone call: 224x224 windows (Image Zooms) or whole images (Pool45)."""
    from zoomrl.vision.backbone import preprocess

    if isinstance(features, ImageZooms):
        crops = [ImageZooms.crop(store.get(images[i % len(images)]), (0, 0, 10_000, 10_000)) for i in range(n)]
        batch = preprocess(np.stack(crops))
        features.backbone(batch[: features.batch_size])  # warm-up (first-call tracing)
        t0 = time.perf_counter()
        for start in range(0, n, features.batch_size):
            features.backbone(batch[start : start + features.batch_size])
        return n / (time.perf_counter() - t0)
    pixels = [store.get(images[i % len(images)]) for i in range(n)]
    features._maps(pixels[0])  # warm-up  # noqa: SLF001
    t0 = time.perf_counter()
    for p in pixels:
        features._maps(p)  # noqa: SLF001 - the exact per-image backbone work of Pool45 Crops
    return n / (time.perf_counter() - t0)


def _reset(features: FeatureModel) -> None:
    features.cache.clear()
    features.backbone_calls = features.backbone_images = 0
    features.backbone_seconds = 0.0


def _timed_test(features: FeatureModel, agent: DQNAgent, images, store, config: Config, batch: int):
    _reset(features)
    t0 = time.perf_counter()
    test = _family("test")
    records = test.run_records(images, store, config, test.greedy_policy, batch, features, agent.q_values)
    return records, time.perf_counter() - t0, features.backbone_images


def benchmark_variant(
    variant: str,
    data: Sequence[str],
    image_set: str | None,
    class_name: str,
    n_images: int,
    weights: str,
    backbone_batch: int,
    test_batch: int,
    log: Callable[[str], None],
    preset: str = "fast",
    repeats: int = 3,
) -> dict[str, Any]:
    """One feature model's figures. The backbone-only rate and the testing time (and for Image Zooms the batch-1
    testing time) are measured ``repeats`` times, in turn, and the best of each kept: this CPU's speed drifts
    within a run, and a ratio of two single timings taken a minute apart carried the drift (testing / backbone
    bound from 0.79 to 1.06 between runs)."""
    train = _family("train")
    config = _family("config").make_config(
        preset,
        variant=variant,
        class_object=class_name,
        weights=weights,
        backbone_batch=backbone_batch,
        test_batch=test_batch,
        episode_batch=test_batch,
        learning_starts=16,
    )
    seed_everything(config.seed)
    images = load_images(data, image_set, class_name, False, n_images, log)
    store = ImageStore()
    for im in images:
        store.get(im)  # decode once, outside every timing
    features = config.feature_model(log)
    state_size = features.descriptor_size + NUM_ACTIONS * config.history_length
    agent = DQNAgent(state_size, NUM_ACTIONS, config, seed=config.seed)
    agent.q_values(np.zeros((1, agent.state_size), np.float32))  # warm-up

    unit = "windows" if variant == "image_zooms" else "images"
    n_bb = max(2 * backbone_batch, 8) if unit == "windows" else len(images)
    bb, sec_b = 0.0, float("inf")
    for _ in range(max(1, repeats)):
        bb = max(bb, _backbone_throughput(features, images, store, n_bb))
        recs_b, sec, units_b = _timed_test(features, agent, images, store, config, test_batch)
        sec_b = min(sec_b, sec)  # the same greedy searches every time: the same backbone work
    log(f"[{variant}] backbone only: {bb:.2f} {unit}/s at batch {backbone_batch if unit == 'windows' else 1}")
    bound_b = units_b / bb  # seconds the bare backbone needs for the same work
    log(
        f"[{variant}] testing, batch {test_batch}: {len(images) / sec_b:.2f} images/s, {units_b} backbone {unit}, "
        f"{bound_b / sec_b:.2f} of the backbone-only bound"
    )
    out: dict[str, Any] = {
        "weights_used": getattr(features, "weights_name", weights),
        "backbone_only_per_second": round(bb, 3),
        "backbone_unit": unit,
        "test_images": len(images),
        "test_images_per_second": round(len(images) / sec_b, 3),
        "test_backbone_units": units_b,
        "test_ratio_to_backbone_bound": round(bound_b / sec_b, 3),
        "timing_rounds": max(1, repeats),
    }
    if variant == "image_zooms":
        sec_1 = float("inf")
        for _ in range(max(1, repeats)):  # best of as many as the batched test, so that their ratio is fair
            recs_1, sec, _ = _timed_test(features, agent, images, store, config, 1)
            sec_1 = min(sec_1, sec)
        same = all(
            [s["actions"] for s in a["searches"]] == [s["actions"] for s in b["searches"]]
            for a, b in zip(recs_b, recs_1)
        )
        out["test_batch1_images_per_second"] = round(len(images) / sec_1, 3)
        out["batched_speedup_over_batch1"] = round(sec_1 / sec_b, 3)
        out["batched_results_identical_to_batch1"] = same
        log(
            f"[{variant}] testing, batch 1: {len(images) / sec_1:.2f} images/s; batched is {sec_1 / sec_b:.2f}x; "
            f"same actions: {same}"
        )

    _reset(features)
    # One training pass of the family's trainee outside a run, on the images decoded above.
    trainee = train.HierarchicalTrainee(config, images, features, agent, {}, Path(), log)
    trainee.store = store
    cold = trainee.epoch(0)[0]
    # the same epoch index: the same windows, now cached
    warm = trainee.epoch(0)[0]
    out.update(
        {
            "train_env_steps_per_second": round(cold.steps / cold.seconds, 3),
            "train_updates_per_second_cold": round(cold.updates / cold.seconds, 3),
            "train_epoch_seconds_cold": round(cold.seconds, 2),
            "train_epoch_seconds_warm": round(warm.seconds, 2),
            "warm_speedup": round(cold.seconds / max(warm.seconds, 1e-9), 2),
            "train_steps": cold.steps,
            "train_updates": cold.updates,
            "warm_env_steps_per_second": round(warm.steps / warm.seconds, 3),
            "warm_updates_per_second": round(warm.updates / warm.seconds, 3),
        }
    )
    log(
        f"[{variant}] training epoch: cold {cold.seconds:.1f} s, warm {warm.seconds:.1f} s "
        f"({out['warm_speedup']:.1f}x), {cold.steps} steps, {cold.updates} updates"
    )
    features.close()
    return out


def run_benchmark(
    data: Sequence[str],
    image_set: str | None,
    class_name: str,
    n_images: int,
    weights: str,
    backbone_batch: int,
    test_batch: int,
    variants: Sequence[str],
    output: Path,
    log: Callable[[str], None] = print,
    preset: str = "fast",
    repeats: int = 3,
) -> dict[str, Any]:
    import keras

    from zoomrl.core.io import write_json

    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "backend": keras.backend.backend(),
        "device": _device(),
        "input_size": INPUT_SIZE,
        "data": list(map(str, data)),
        "image_set": image_set,
        "class": class_name,
        "images": n_images,
        "weights": weights,
        "preset": preset,
        "models": {},
    }
    for variant in variants:
        result["models"][variant] = benchmark_variant(
            variant, data, image_set, class_name, n_images, weights, backbone_batch, test_batch, log, preset, repeats
        )
    result["peak_memory_mb"] = round(_peak_mb(), 1)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    write_json(output, result)
    return result


def table(result: dict[str, Any]) -> str:
    rows = [
        ("backbone only (units/s)", "backbone_only_per_second"),
        ("testing (images/s)", "test_images_per_second"),
        ("testing / backbone bound", "test_ratio_to_backbone_bound"),
        ("testing batch 1 (images/s)", "test_batch1_images_per_second"),
        ("batched / batch 1", "batched_speedup_over_batch1"),
        ("training env steps/s (cold)", "train_env_steps_per_second"),
        ("training updates/s (cold)", "train_updates_per_second_cold"),
        ("epoch s cold", "train_epoch_seconds_cold"),
        ("epoch s warm cache", "train_epoch_seconds_warm"),
        ("warm speed-up", "warm_speedup"),
    ]
    variants = list(result["models"])
    lines = [f"{'':30s}" + "".join(f"{v:>16s}" for v in variants)]
    for label, key in rows:
        cells = "".join(f"{str(result['models'][v].get(key, '-')):>16s}" for v in variants)
        lines.append(f"{label:30s}{cells}")
    lines.append(
        f"backend {result['backend']}, device {result['device']}, peak memory {result['peak_memory_mb']} MB, "
        f"{result['seconds']} s in all"
    )
    return "\n".join(lines)
