"""Time one PatchDrop policy update and one classifier update under each way of running the networks.

    python scripts/bench_patchdrop.py                 # TensorFlow and JAX (each in its own process), fast preset
    python scripts/bench_patchdrop.py --repeats 20 --policy-batch 64 --classifier-batch 128

Rows (the fast preset's networks on 32 x 32 digit canvases: ResNet-32 classifiers, ResNet-8 policy):

* ``tf eager``: everything op by op (``run_eagerly``);
* ``tf eager forwards``: the forwards op by op, the updates traced (``train_on_batch`` through ``tf.function``),
  what the agent did before issue 20;
* ``tf graph``: the forwards traced as well (``execution: graph``, the default);
* ``tf xla``: forwards and updates compiled by XLA (``execution: xla``);
* ``jax``: ``KERAS_BACKEND=jax``, forwards and updates through ``jax.jit``.

A policy update is :meth:`PatchDropAgent.learn` in stage 2 (the policy in training mode, the HR classifier on the
sampled and the greedy images, one REINFORCE step); a classifier update is the same in stage 1 (one step of
the HR and of the LR classifier). The first ``--warmup`` calls (tracing, compiling) are timed apart. Prints a table
and writes ``--output`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MODES = {"tensorflow": ("tf eager", "tf eager forwards", "tf graph", "tf xla"), "jax": ("jax",)}


def measure(mode: str, repeats: int, warmup: int, policy_batch: int, classifier_batch: int) -> dict:
    """Times of ``mode`` in this process (its backend must be the one Keras runs)."""
    import numpy as np

    from zoomrl.agents.base import LabelledBatch
    from zoomrl.agents.patchdrop.agent import PatchDropAgent
    from zoomrl.agents.seeding import seed_everything
    from zoomrl.experiments.patchdrop.config import make_config

    seed_everything(0)
    execution = {
        "tf eager": "eager",
        "tf eager forwards": "graph",
        "tf graph": "graph",
        "tf xla": "xla",
        "jax": "graph",
    }[mode]
    cfg = make_config("fast", execution=execution, run_eagerly=mode == "tf eager")
    rng = np.random.default_rng(0)
    images = rng.random((max(policy_batch, classifier_batch), 32, 32, 1)).astype(np.float32)
    labels = rng.integers(0, 10, len(images))
    out: dict = {"mode": mode}
    for what, stage, batch in (
        ("policy_update", "pretrain", policy_batch),
        ("classifier_update", "classifiers", classifier_batch),
    ):
        agent = PatchDropAgent((32, 32, 1), 10, cfg, seed=0)
        if mode == "tf eager forwards":
            agent.execution = "eager"  # the forwards only; the updates stay traced
        agent.configure(stage)  # learn() runs this stage's update
        x, y = images[:batch], labels[:batch]

        def step(agent=agent, x=x, y=y) -> None:
            agent.learn(LabelledBatch(x, y))

        t0 = time.perf_counter()
        for _ in range(warmup):
            step()
        first = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        out[what] = {
            "batch": batch,
            "median_ms": round(1000 * float(np.median(times)), 1),
            "min_ms": round(1000 * float(np.min(times)), 1),
            "warmup_s": round(first, 2),
        }
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="tensorflow,jax", help="default: %(default)s")
    p.add_argument("--repeats", type=int, default=10, help="timed calls per row (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=2, help="untimed first calls (default: %(default)s)")
    p.add_argument("--policy-batch", type=int, default=64, help="default: %(default)s (the fast preset's)")
    p.add_argument("--classifier-batch", type=int, default=128, help="default: %(default)s (the fast preset's)")
    p.add_argument("--modes", default="", help="only these rows, comma-separated (default: all)")
    p.add_argument("--output", default="bench_patchdrop.json", help="default: %(default)s")
    p.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    sizes = (args.repeats, args.warmup, args.policy_batch, args.classifier_batch)
    if args.child:  # one backend's rows, in a process started with its KERAS_BACKEND
        print(json.dumps([measure(m, *sizes) for m in args.child.split(",")]))
        return 0
    wanted = [m.strip() for m in args.modes.split(",") if m.strip()]
    rows = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend not in MODES:
            print(f"error: --backends: unknown backend {backend!r} (tensorflow, jax)", file=sys.stderr)
            return 2
        modes = [m for m in MODES[backend] if not wanted or m in wanted]
        if not modes:
            continue
        env = {
            **os.environ,
            "KERAS_BACKEND": backend,
            "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu"),
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        }
        cmd = [
            sys.executable,
            __file__,
            "--child",
            ",".join(modes),
            "--repeats",
            str(args.repeats),
            "--warmup",
            str(args.warmup),
            "--policy-batch",
            str(args.policy_batch),
            "--classifier-batch",
            str(args.classifier_batch),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode:
            print(f"error: the {backend} run failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            return 1
        rows += json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{'mode':<20}{'policy update (ms)':>20}{'classifier update (ms)':>24}{'warm-up (s)':>14}")
    for r in rows:
        pu, cu = r["policy_update"], r["classifier_update"]
        print(f"{r['mode']:<20}{pu['median_ms']:>20}{cu['median_ms']:>24}{pu['warmup_s'] + cu['warmup_s']:>14.1f}")
    tmp = Path(args.output).with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"rows": rows, "args": vars(args)}, indent=1))
    tmp.replace(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
