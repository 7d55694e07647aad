"""One probe per family: its environment's steps, its learners' updates at the networks of its presets, and the
epoch those rates imply, on small fixed synthetic data built here (nothing is read from disk).

The families are reached by name through :mod:`importlib`, as ``python -m zoomrl`` and ``sweep`` reach them (the
benchmark is a tool beside the families, not one of them). Every probe returns plain numbers: the caller adds the
roofline, memory and the table. ``quick`` runs every measurement at tiny sizes (the ``tiny`` presets, a NumPy
stand-in for VGG-16, a handful of steps): it proves the benchmark runs, its figures mean nothing."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zoomrl.agents.base import LabelledBatch
from zoomrl.experiments.bench.flops import BACKWARD_FACTOR, forward_flops
from zoomrl.experiments.bench.measure import kernel_seconds, optimizer_step_bytes, rate

FAMILY_NAMES = ("hierarchical", "active", "glimpse", "patchdrop")

DEMO_OBJECTS = 77
"""Objects of the demo set's 64 trainval images (README, "Data"): the epoch the DQN families' figures are
extrapolated to (one search per object, each searching for ``number_of_steps``: an untrained agent's upper bound)."""
PATCHDROP_TRAIN_IMAGES = 5752
"""Training canvases of the ``fast`` preset's digits (``train_per_digit`` 4), counted with
``experiments.patchdrop.train.load_data``: the epoch the PatchDrop figures are extrapolated to."""


def _module(family: str, name: str) -> Any:
    return importlib.import_module(f"zoomrl.experiments.{family}.{name}")


@dataclass
class Sizes:
    """How much each probe measures: ``quick`` for tests, else enough repeats to average over noise."""

    quick: bool
    env_steps: int = field(init=False)
    updates: int = field(init=False)
    images: int = field(init=False)
    warmup: int = field(init=False)
    kernel_repeats: int = field(init=False)
    kernel_seconds: dict[tuple[Any, ...], float] = field(init=False, default_factory=dict)
    """Each distinct layer kernel's seconds alone (:func:`~.measure.kernel_seconds`), timed once per run, right
    after the first update that calls it (so that both see the machine in the same state)."""

    def __post_init__(self) -> None:
        self.warmup = 1 if self.quick else 2
        self.env_steps = 8 if self.quick else 160
        self.updates = 2 if self.quick else 20
        self.images = 2 if self.quick else 16
        self.kernel_repeats = 2 if self.quick else 10


def network_entry(
    label: str,
    preset: str,
    batch: int,
    update: Callable[[], Any],
    forward_parts: list[tuple[Callable[[], Any], int]],
    params: int,
    repeats: int,
    note: str,
    warmup: int = 2,
    *,
    trained: Sequence[Any],
    sizes: Sizes | None = None,
) -> dict[str, Any]:
    """Time ``update`` and count its FLOPs: ``forward_parts`` are ``(eager forward, factor)`` pairs whose sum of
    ``factor * forward FLOPs`` is the update's (``BACKWARD_FACTOR`` for a network trained, 1 for one only run).
    ``trained`` are the compiled models the update steps (their optimizers): the bytes that step moves at the
    least (:func:`~zoomrl.experiments.bench.measure.optimizer_step_bytes`). With ``sizes``, the update's kernels not
    yet timed in this run are timed alone right after it, into ``sizes.kernel_seconds``."""
    flops = 0
    forward = 0
    kernels: list[tuple[int, list[tuple[Any, ...]]]] = []
    for fn, factor in forward_parts:
        f, calls = forward_flops(fn)
        flops += factor * f
        forward += f if factor == BACKWARD_FACTOR else 0
        kernels.append((factor, [c.kernel for c in calls]))

    def one() -> int:
        update()
        return 1

    r = rate(one, repeats, warmup=warmup)
    if sizes is not None:
        import keras

        dtype = keras.config.floatx()
        for _, ks in kernels:
            for k in ks:
                if k not in sizes.kernel_seconds:
                    sizes.kernel_seconds[k] = kernel_seconds(k, dtype, sizes.kernel_repeats)
    return {
        "label": label,
        "preset": preset,
        "batch": int(batch),
        "parameters": int(params),
        "trained_forward_flops": int(forward),
        "update_flops": int(flops),
        "update_composition": note,
        "optimizer_step_bytes": optimizer_step_bytes(trained),
        "updates_per_second": r["per_second"],
        "best_update_seconds": r["best_call_seconds"],
        "first_update_seconds": r["first_call_seconds"],
        "updates_timed": r["units"],
        "_update": update,  # for the traced-memory pass; dropped before the JSON
        "_kernels": kernels,  # for its kernels' time alone; dropped before the JSON
    }


def _synthetic_detection_images(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` 256x256 RGB canvases of noise with one or two bright boxes each (40 to 80 % of the side): the
    demo set's geometry."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = rng.integers(0, 80, (256, 256, 3), dtype=np.uint8)
        boxes = []
        for _ in range(int(rng.integers(1, 3))):
            side = int(rng.integers(102, 205))
            x, y = (int(v) for v in rng.integers(0, 256 - side, 2))
            img[y : y + side, x : x + side] = 200
            boxes.append((x, y, x + side, y + side))
        out.append((img, np.asarray(boxes, np.float32)))
    return out


def stand_in_backbone(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``--quick`` only: VGG-16's two output maps at their shapes, from block means of the input (no network)."""
    n, h, w, _ = batch.shape
    p5 = np.zeros((n, max(h // 32, 1), max(w // 32, 1), 512), np.float32)
    p4 = np.zeros((n, max(h // 16, 1), max(w // 16, 1), 512), np.float32)
    p5 += batch.mean(axis=(1, 2, 3))[:, None, None, None]
    return p4, p5


def _backbone(quick: bool, shared: dict[str, Any]) -> tuple[Any, str]:
    """VGG-16 with random weights (the same arithmetic as trained ones; nothing to download), built once for both
    DQN families; the NumPy stand-in under ``quick``."""
    if quick:
        return stand_in_backbone, "stand-in (quick: no VGG-16)"
    if "vgg" not in shared:
        from zoomrl.vision.backbone import load_backbone

        shared["vgg"] = load_backbone("none", log=lambda _: None)
    return shared["vgg"], "VGG-16, random weights"


DRIVE_SEED = 0
"""Seed of the actions :func:`_drive` takes: every pass, backend and family order takes the same ones."""


def _drive(vec: Any, agent: Any, steps: int, seed: int = DRIVE_SEED) -> int:
    """``steps`` steps of the vector env; returns the steps taken. The agent's Q-network runs on every acting
    observation, as in a training step, but the actions are uniform draws from a NumPy stream seeded with
    ``seed``, not its greedy choice: an untrained network's argmax depends on its initial weights, which differ
    between backends (and with the families run before), and it once pinned JAX's searches to a move against
    the image border, which changes no window (160 steps cost 16 VGG-16 windows there against TensorFlow's 176).
    Drawn so, the windows are the same under every backend and a second pass revisits them (a warm cache); a
    uniform draw is also what training's exploration does in its first, epsilon = 1 steps."""
    rng = np.random.default_rng(seed)
    obs, _ = vec.reset()
    done = 0
    while done < steps:
        idx = vec.acting
        if not len(idx):
            obs, _ = vec.reset()
            continue
        agent.q_values(obs[idx])  # its cost belongs to every step; its values choose nothing (see above)
        actions = np.zeros(vec.num_envs, np.int64)
        actions[idx] = rng.integers(0, vec.num_actions, len(idx))
        out = vec.step(actions)
        obs[out.computed] = out.observations[out.computed]
        done += len(idx)
    return done


def _fill_replay(agent: Any, state_size: int, config: Any, rng: np.random.Generator) -> None:
    """Random transitions until the agent may learn (and demonstrations when its preset mixes them in)."""
    from zoomrl.agents.base import Transitions

    rows = 64
    need = max(int(config.learning_starts), int(config.minibatch)) + rows
    for demo in (False, True) if getattr(config, "demo_ratio", 0) > 0 else (False,):
        for k in range(0, need, rows):
            states = rng.standard_normal((rows, state_size)).astype(np.float32)
            agent.observe(
                Transitions(
                    keys=[(demo, k, j) for j in range(rows)],
                    states=states,
                    actions=rng.integers(0, agent.num_actions, rows),
                    rewards=rng.choice([-1.0, 1.0], rows).astype(np.float32),
                    next_states=np.roll(states, 1, axis=0),
                    terminated=np.ones(rows, bool),
                    truncated=np.zeros(rows, bool),
                    demo=demo,
                    extras={"iou": rng.uniform(0, 1, rows).astype(np.float32)},
                )
            )


def _dqn_network(family: str, preset: str, config: Any, state_size: int, num_actions: int, sizes: Sizes) -> dict:
    from zoomrl.agents.dqn.agent import DQNAgent

    agent = DQNAgent(state_size, num_actions, config, seed=0)
    _fill_replay(agent, state_size, config, np.random.default_rng(0))
    b = int(config.minibatch)
    zeros = np.zeros((b, state_size), np.float32)
    extra = 1 + int(agent.target_model is not None and bool(config.double_dqn))
    note = f"3 x forward (train step) + {extra} x forward of next states (TD targets)"
    return network_entry(
        f"{family} {preset} MLP {state_size}-{config.hidden_units}-{config.hidden_units}-{num_actions}",
        preset,
        b,
        lambda: agent.update(agent.sample(b)),
        [(lambda: agent.network(zeros), BACKWARD_FACTOR), (lambda: agent.model(zeros), extra)],
        agent.network.count_params(),
        sizes.updates,
        note,
        sizes.warmup,
        trained=[agent.learner],
        sizes=sizes,
    )


def _dqn_env(make_envs: Callable[[Any], list], features: Any, config: Any, agent: Any, sizes: Sizes) -> dict:
    from zoomrl.envs.vector import ZoomVectorEnv

    vec = ZoomVectorEnv(make_envs(features), features, config.descriptor_scale)
    features.cache.clear()
    cold = rate(lambda: _drive(vec, agent, sizes.env_steps), 1, warmup=0)
    computed = int(features.backbone_images)
    warm = rate(lambda: _drive(vec, agent, sizes.env_steps), 1, warmup=0)  # the same windows: all cached now
    return {
        "unit": "env steps (one window each)",
        "actions": f"uniform, NumPy seed {DRIVE_SEED} (the same windows under every backend); Q-network run per step",
        "envs_in_lockstep": vec.num_envs,
        "steps_per_second_cold": cold["per_second"],
        "steps_per_second_warm": warm["per_second"],
        "steps_timed": cold["units"],
        "backbone_images_cold": computed,
        "backbone_images_warm": int(features.backbone_images) - computed,
    }


def _dqn_epoch(env: dict, net: dict, config: Any) -> dict:
    steps = DEMO_OBJECTS * int(config.number_of_steps)
    updates = steps / int(config.train_every)
    return {
        "basis": f"extrapolated: {steps} env steps (the demo set's {DEMO_OBJECTS} objects x {config.number_of_steps}"
        f" steps) and {updates:.0f} updates (one per {config.train_every} steps) at the measured rates",
        "seconds_cold": steps / env["steps_per_second_cold"] + updates / net["updates_per_second"],
        "seconds_warm": steps / env["steps_per_second_warm"] + updates / net["updates_per_second"],
    }


def probe_hierarchical(sizes: Sizes, shared: dict[str, Any]) -> dict[str, Any]:
    from zoomrl.agents.dqn.agent import DQNAgent
    from zoomrl.envs.zoom import NUM_ACTIONS, ZoomEnv
    from zoomrl.vision.features import make_feature_model

    cfg_mod = _module("hierarchical", "config")
    backbone, backbone_name = _backbone(sizes.quick, shared)
    images = _synthetic_detection_images(sizes.images, seed=0)
    overrides = {"hidden_units": 32, "minibatch": 8, "learning_starts": 8} if sizes.quick else {}
    networks = []
    fast = cfg_mod.make_config("fast", **overrides)
    for preset in ("fast", "fast2"):
        config = cfg_mod.make_config(preset, **overrides)
        # fast2's 2x2x512 descriptor: the same VGG-16 work, 12 times fewer first-layer weights
        descriptor = 512 * config.descriptor_pool**2
        state = descriptor + NUM_ACTIONS * config.history_length
        networks.append(_dqn_network("hierarchical", preset, config, state, NUM_ACTIONS, sizes))
    features = make_feature_model("image_zooms", backbone, "bench", batch_size=fast.backbone_batch)
    agent = DQNAgent(features.descriptor_size + NUM_ACTIONS * fast.history_length, NUM_ACTIONS, fast, seed=0)

    def make(f: Any) -> list:
        return [
            ZoomEnv(
                img,
                boxes,
                features=f,
                image_key=f"bench{i}",
                scale=fast.scale_subregion,
                max_steps=fast.number_of_steps,
                history_length=fast.history_length,
                descriptor_scale=fast.descriptor_scale,
                index=i,
                training=True,
            )
            for i, (img, boxes) in enumerate(images)
        ]

    env = _dqn_env(make, features, fast, agent, sizes)
    env["backbone"] = backbone_name
    return {"env": env, "networks": networks, "epoch": _dqn_epoch(env, networks[0], fast), "preset": "fast"}


def probe_active(sizes: Sizes, shared: dict[str, Any]) -> dict[str, Any]:
    from zoomrl.agents.dqn.agent import DQNAgent
    from zoomrl.envs.active import ActiveEnv
    from zoomrl.vision.features import make_feature_model

    cfg_mod = _module("active", "config")
    backbone, backbone_name = _backbone(sizes.quick, shared)
    images = _synthetic_detection_images(sizes.images, seed=1)
    overrides = {"hidden_units": 32, "minibatch": 8, "learning_starts": 8} if sizes.quick else {}
    config = cfg_mod.make_config("fast", **overrides)
    features = make_feature_model("image_zooms", backbone, "bench", batch_size=config.backbone_batch)
    envs = [ActiveEnv(images[0][0], images[0][1], features=features, **config.env_kwargs(True))]
    state_size = int(envs[0].observation_space.shape[0])
    num_actions = int(envs[0].action_space.n)
    # active has no fast2 preset: its fast network is the only one
    net = _dqn_network("active", "fast", config, state_size, num_actions, sizes)
    agent = DQNAgent(state_size, num_actions, config, seed=0)

    def make(f: Any) -> list:
        return [
            ActiveEnv(img, boxes, features=f, image_key=f"bench{i}", index=i, **config.env_kwargs(True))
            for i, (img, boxes) in enumerate(images)
        ]

    env = _dqn_env(make, features, config, agent, sizes)
    env["backbone"] = backbone_name
    return {"env": env, "networks": [net], "epoch": _dqn_epoch(env, net, config), "preset": "fast"}


def _learn(agent: Any, x: np.ndarray, y: np.ndarray) -> Any:
    """One update of a :class:`~zoomrl.agents.base.BatchAgent` (PatchDrop's is what ``configure(stage)`` chose)."""
    return agent.learn(LabelledBatch(x, y))


def probe_glimpse(sizes: Sizes, shared: dict[str, Any]) -> dict[str, Any]:
    cfg_mod = _module("glimpse", "config")
    from zoomrl.agents.ram.agent import build_agent

    rng = np.random.default_rng(2)
    networks = []
    env: dict[str, Any] = {}
    # fast2 classifies with fast's network; fast2 on photos (regress) has the conv glimpse network: measured too
    cases = [("fast", "classify", (60, 60, 1)), ("fast2", "regress", (128, 128, 3))]
    if sizes.quick:  # the conv glimpse network on small photos: seconds
        cases[1] = ("fast2", "regress", (32, 32, 3))
    for preset, task, shape in cases:
        cfg = cfg_mod.make_config("tiny" if sizes.quick else preset, task)
        if sizes.quick and task == "regress":
            cfg = cfg_mod.make_config("tiny", task, glimpse_net="conv")
        n_out = 10 if task == "classify" else 2
        agent = build_agent("ram", cfg, shape, n_out, task=task, seed=0)
        b = int(cfg.batch_size)
        x = rng.uniform(0, 1, (b, *shape)).astype(np.float32)
        if task == "classify":
            y = rng.integers(0, 10, b)
        else:
            y = np.concatenate([rng.uniform(-1, 1, (b, 2)), np.full((b, 1), 0.5)], axis=1).astype(np.float32)
        net = network_entry(
            f"glimpse {preset} RAM {cfg.glimpse_net} {cfg.core} {'x'.join(map(str, shape))}, {cfg.glimpses} glimpses",
            preset,
            b,
            lambda agent=agent, x=x, y=y: _learn(agent, x, y),
            [(lambda agent=agent, x=x: agent.model(x), BACKWARD_FACTOR)],
            agent.model.count_params(),
            sizes.updates,
            "3 x the rollout (every glimpse's networks); the glimpse sensor's crops not counted",
            sizes.warmup,
            trained=[agent.model],
            sizes=sizes,
        )
        net["epoch_updates"] = int(cfg.train_size) // b
        networks.append(net)
        if not env:
            r = rate(lambda agent=agent, x=x: agent.act(x) is not None and len(x) * agent.glimpses, sizes.updates)
            env = {"unit": "glimpses (one image, one glimpse)", "steps_per_second": r["per_second"]}
    first = networks[0]
    epoch = {
        "basis": f"extrapolated: {first['epoch_updates']} updates (train_size / batch_size) at the measured rate; "
        "the canvases' drawing not counted",
        "seconds": first["epoch_updates"] / first["updates_per_second"],
    }
    return {"env": env, "networks": networks, "epoch": epoch, "preset": "fast"}


def probe_patchdrop(sizes: Sizes, shared: dict[str, Any]) -> dict[str, Any]:
    from zoomrl.agents.patchdrop.agent import PatchDropAgent

    cfg_mod = _module("patchdrop", "config")
    rng = np.random.default_rng(3)
    networks = []
    env: dict[str, Any] = {}
    shape = (32, 32, 1)
    epoch_images = 64 if sizes.quick else PATCHDROP_TRAIN_IMAGES
    epoch: dict[str, Any] = {"basis": f"extrapolated: {epoch_images} training images per epoch at the measured rates"}
    for preset in ("fast",) if sizes.quick else ("fast", "fast2"):  # quick: both would be the tiny network
        cfg = cfg_mod.make_config("tiny" if sizes.quick else preset)
        shape = (int(cfg.canvas_size), int(cfg.canvas_size), 1)
        if preset == "fast":  # stage 1: both classifiers; fast2's only differs in its masks, not its network
            agent = PatchDropAgent(shape, 10, cfg, seed=0)
            agent.configure("classifiers")
            b = int(cfg.classifier_batch)
            x = rng.uniform(0, 1, (b, *shape)).astype(np.float32)
            y = rng.integers(0, 10, b)
            low = agent.low_resolution(x)
            net = network_entry(
                f"patchdrop {preset} classifiers (ResNet HR {shape[0]}px + LR {low.shape[1]}px)",
                preset,
                b,
                lambda agent=agent, x=x, y=y: _learn(agent, x, y),
                [
                    (lambda agent=agent, x=x: agent.hr(x), BACKWARD_FACTOR),
                    (lambda agent=agent, low=low: agent.lr(low), BACKWARD_FACTOR),
                ],
                agent.hr.count_params() + agent.lr.count_params(),
                sizes.updates,
                "3 x (HR forward + LR forward)",
                sizes.warmup,
                trained=[agent.hr, agent.lr],
                sizes=sizes,
            )
            networks.append(net)
            epoch["classifiers_seconds"] = epoch_images / b / net["updates_per_second"]
        agent = PatchDropAgent(shape, 10, cfg, seed=0)
        agent.configure("pretrain")
        b = int(cfg.pretrain_batch)
        x = rng.uniform(0, 1, (b, *shape)).astype(np.float32)
        y = rng.integers(0, 10, b)
        low = agent.low_resolution(x)
        twice = np.concatenate([x, x])
        net = network_entry(
            f"patchdrop {preset} policy (ResNet {low.shape[1]}px, {agent.patches} patches)",
            preset,
            b,
            lambda agent=agent, x=x, y=y: _learn(agent, x, y),
            [
                (lambda agent=agent, low=low: agent.policy(low), 1 + BACKWARD_FACTOR),
                (lambda agent=agent, twice=twice: agent.hr(twice), 1),
            ],
            agent.policy.count_params(),
            sizes.updates,
            "policy forward (sampling) + 3 x policy (train step) + HR forward on sampled and greedy masks (2B)",
            sizes.warmup,
            trained=[agent.policy],
            sizes=sizes,
        )
        networks.append(net)
        epoch[f"policy_seconds_{preset}"] = epoch_images / b / net["updates_per_second"]
        if not env:

            def step(agent: Any = agent, x: np.ndarray = x) -> int:
                agent.hr_scores(x, agent.act(x, explore=True))
                return len(x)

            r = rate(step, sizes.updates)
            env = {"unit": "images (policy, sampled mask, HR classifier)", "steps_per_second": r["per_second"]}
    return {"env": env, "networks": networks, "epoch": epoch, "preset": "fast"}


PROBES: dict[str, Callable[[Sizes, dict[str, Any]], dict[str, Any]]] = {
    "hierarchical": probe_hierarchical,
    "active": probe_active,
    "glimpse": probe_glimpse,
    "patchdrop": probe_patchdrop,
}
