"""Time one training update of a glimpse-family model under each Keras backend and compilation mode.

    python scripts/bench_glimpse_backends.py                       # fast RAM, 300 updates per mode
    python scripts/bench_glimpse_backends.py --preset fast2 --task regress --glimpse-size 16 --updates 60

Modes: ``tf-eager`` (TensorFlow, ``run_eagerly``), ``tf-graph`` (``tf.function``, no XLA), ``tf-xla``
(``jit_compile=True``), ``jax`` (``KERAS_BACKEND=jax``, ``jax.jit``). Each mode runs in its own subprocess, because
Keras fixes its backend when it is first imported. The first ``--warmup`` updates (tracing, compiling) are timed
apart; the figure is the median over the remaining updates of the wall time per update, with the CPU time
(user + system) of the timed part beside it. Prints one line per mode and writes ``--output`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

MODES = ("tf-eager", "tf-graph", "tf-xla", "jax")
REPO = Path(__file__).resolve().parents[1]


def child(mode: str, preset: str, task: str, updates: int, warmup: int, image_size: int, glimpse_size: int) -> dict:
    """One mode, in this process (the backend was set by the parent through KERAS_BACKEND)."""
    import numpy as np

    from zoomrl.agents.base import LabelledBatch
    from zoomrl.agents.ram.agent import RamAgent
    from zoomrl.agents.seeding import seed_everything
    from zoomrl.data.digits import PROTOCOLS, cluttered_canvases, load_digit_images
    from zoomrl.experiments.glimpse.config import make_config

    cfg = make_config(preset, task, glimpse_size=glimpse_size or None)
    seed_everything(0)
    if task == "classify":
        images, labels = load_digit_images("train")
        canvases, targets, _ = cluttered_canvases(
            images, labels, n=cfg.batch_size * 8, seed=0, **PROTOCOLS["cluttered60"]
        )
        x = canvases[..., None]
    else:  # random photos of the raccoon's size: the cost does not depend on what the pixels show
        rng = np.random.default_rng(0)
        x = rng.random((cfg.batch_size * 8, image_size, image_size, 3), dtype=np.float32)
        targets = np.concatenate([rng.uniform(-0.5, 0.5, (len(x), 2)), np.full((len(x), 1), 2.0)], 1)
        targets = targets.astype(np.float32)
    jit = {"tf-eager": False, "tf-graph": False, "tf-xla": True, "jax": True}[mode]
    agent = RamAgent(
        x.shape[1:],
        optimizer=cfg.optimizer,
        learning_rate=cfg.learning_rate,
        momentum=cfg.momentum,
        jit_compile=jit,
        run_eagerly=mode == "tf-eager",
        seed=0,
        task=task,
        n_outputs=10 if task == "classify" else 2,
        glimpses=cfg.glimpses,
        glimpse_size=cfg.glimpse_size,
        scales=cfg.scales,
        glimpse_net=cfg.glimpse_net,
        core=cfg.core,
        glimpse_hidden=cfg.glimpse_hidden,
        loc_hidden=cfg.loc_hidden,
        glimpse_units=cfg.glimpse_units,
        core_units=cfg.core_units,
        loc_std=cfg.loc_std,
        first_location=cfg.first_location,
        logp_unclipped=cfg.logp_unclipped,
    )
    bs = cfg.batch_size
    batches = [(x[i * bs : (i + 1) * bs], targets[i * bs : (i + 1) * bs]) for i in range(8)]
    t0 = time.perf_counter()
    for i in range(warmup):
        agent.learn(LabelledBatch(*batches[i % 8]))
    warm = time.perf_counter() - t0
    times = []
    c0, t0 = os.times(), time.perf_counter()
    for i in range(updates):
        t = time.perf_counter()
        agent.learn(LabelledBatch(*batches[i % 8]))
        times.append(time.perf_counter() - t)
    wall, c1 = time.perf_counter() - t0, os.times()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    return {
        "mode": mode,
        "updates": updates,
        "warmup_s": round(warm, 2),
        "median_ms": round(1e3 * float(np.median(times)), 2),
        "wall_ms": round(1e3 * wall / updates, 2),
        "cpu_ms": round(1e3 * cpu / updates, 2),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="fast", help="glimpse preset (default: %(default)s)")
    p.add_argument("--task", default="classify", choices=("classify", "regress"), help="default: %(default)s")
    p.add_argument("--updates", type=int, default=300, help="timed updates per mode (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=20, help="untimed first updates (default: %(default)s)")
    p.add_argument("--image-size", type=int, default=128, help="regress: photo side (default: %(default)s)")
    p.add_argument("--glimpse-size", type=int, default=0, help="0: the preset's (default: %(default)s)")
    p.add_argument("--modes", default=",".join(MODES), help="default: %(default)s")
    p.add_argument("--output", default="bench_glimpse.json", help="default: %(default)s")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(
            json.dumps(
                child(args.child, args.preset, args.task, args.updates, args.warmup, args.image_size, args.glimpse_size)
            )
        )
        return 0
    results = []
    for mode in args.modes.split(","):
        if mode not in MODES:
            print(f"error: --modes: unknown mode {mode!r}; expected some of {', '.join(MODES)}", file=sys.stderr)
            return 2
        env = {
            **os.environ,
            "KERAS_BACKEND": "jax" if mode == "jax" else "tensorflow",
            "JAX_PLATFORMS": "cpu",
            "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }
        cmd = [
            sys.executable,
            __file__,
            "--child",
            mode,
            "--preset",
            args.preset,
            "--task",
            args.task,
            "--updates",
            str(args.updates),
            "--warmup",
            str(args.warmup),
            "--image-size",
            str(args.image_size),
            "--glimpse-size",
            str(args.glimpse_size),
        ]
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        if proc.returncode:
            print(f"{mode}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(r)
        print(
            f"{mode:9s} median {r['median_ms']:8.2f} ms/update  wall {r['wall_ms']:8.2f}  cpu {r['cpu_ms']:8.2f}"
            f"  (first {args.warmup}: {r['warmup_s']:.1f} s)",
            flush=True,
        )
    tmp = Path(args.output + ".tmp")
    tmp.write_text(json.dumps({"preset": args.preset, "task": args.task, "results": results}, indent=1))
    tmp.replace(args.output)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
