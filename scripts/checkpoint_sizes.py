#!/usr/bin/env python
"""Measure what a training run keeps on disk: the files the real checkpoint code writes for a paper-preset
Q-network, epoch after epoch, with a full replay memory of real VGG-16 descriptors.

    python scripts/checkpoint_sizes.py [--cache feature_cache/image_zooms_<fingerprint>.h5] [--preset paper]
                                       [--epochs 6] [--keep 3]

Descriptors come from a feature cache written by an Image Zooms run (``--feature-cache``); consecutive cached
windows stand in for consecutive states. Without ``--cache``, ReLU-sparse random descriptors are used (and said).
From epoch ``keep + 1`` on the folder's content no longer grows, so the last line is what a 50-epoch run holds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np


def main() -> int:
    from zoomrl.experiments.common import quiet_backend

    quiet_backend()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", help="an Image Zooms feature cache (HDF5) to take descriptors from")
    p.add_argument("--preset", default="paper")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--keep", type=int, default=3)
    args = p.parse_args()

    from zoomrl.agents.dqn.agent import DQNAgent, one_step
    from zoomrl.agents.dqn.checkpoint import save_epoch
    from zoomrl.core.checkpoint import Checkpointer
    from zoomrl.envs.zoom import NUM_ACTIONS
    from zoomrl.experiments.hierarchical.config import make_config

    cfg = make_config(args.preset, class_object="raccoon")
    state_size = 25088 + NUM_ACTIONS * cfg.history_length
    n = cfg.replay_size + 1
    if args.cache:
        import h5py

        with h5py.File(args.cache, "r") as f:
            names = [k for k in f.keys()][:n]
            desc = np.stack([np.asarray(f[k]["0"]).reshape(-1) for k in names])
        source = f"{len(desc)} descriptors from {args.cache}"
    else:
        rng = np.random.default_rng(0)
        desc = np.maximum(rng.normal(-1.0, 3.0, size=(n, 25088)), 0).astype(np.float32)
        source = "random ReLU-sparse descriptors (no --cache given)"
    if len(desc) < n:
        desc = np.concatenate([desc] * (n // len(desc) + 1))[:n]
    states = np.concatenate([desc, np.zeros((n, state_size - 25088), np.float32)], axis=1)
    agent = DQNAgent(state_size, NUM_ACTIONS, cfg)
    rng = np.random.default_rng(1)
    for t in range(cfg.replay_size):  # searches of 5 steps: s' is the next state, the 5th ends with a trigger
        end = t % 5 == 4
        agent.observe(one_step(t // 5, states[t], int(rng.integers(NUM_ACTIONS)), 1.0, states[t + 1], end, False))
    agent.update(agent.sample(cfg.minibatch))  # so the optimizer slots hold values
    print(f"preset {args.preset}: {len(agent.memory)} transitions in replay ({source})")
    with tempfile.TemporaryDirectory() as tmp:
        ck = Checkpointer(Path(tmp), keep=args.keep, metric="trigger_success")
        meta = {
            "family": "hierarchical",
            "variant": "image_zooms",
            "class_object": "raccoon",
            "state_size": state_size,
            "num_actions": NUM_ACTIONS,
        }
        history: list[dict] = []
        for epoch in range(1, args.epochs + 1):
            history.append({"epoch": epoch})
            save_epoch(ck, epoch, agent, cfg, history, meta, score=float(epoch == 2))
            files = {f.name: f.stat().st_size for f in Path(tmp).iterdir() if f.is_file()}
            total = sum(files.values())
            print(
                f"after epoch {epoch}: {len(files)} files, {total / 2**20:.0f} MiB "
                f"(weights {files[f'epoch_{epoch}.weights.h5'] / 2**20:.0f} MiB each, training_state.npz "
                f"{files['training_state.npz'] / 2**20:.0f} MiB)"
            )
    print(f"a {cfg.epochs}-epoch run keeps {args.keep} epochs + best: {total / 2**30:.2f} GiB on disk")
    return 0


if __name__ == "__main__":
    sys.exit(main())
