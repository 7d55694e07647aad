"""PatchDrop's stages as networks: which networks each stage trains, where a model after a stage takes each network
from, the agents a stage starts with, and the one weights file that holds every stage's networks.

A run's weights file holds one HDF5 group per stage network (``classifiers/hr``, ``classifiers/lr``,
``pretrain/sigma0.5/policy``, ``finetune/policy``, ``finetune/hr``, ``two_stream/policy``), each the network's
weights as ``<group>/<index>``, and the attribute ``finished`` (the JSON list of the stages whose networks are final).
A stage stores only the networks it trains: the others are those of the stage before, unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from zoomrl.agents.base import LabelledBatch
from zoomrl.agents.patchdrop.agent import STAGES, PatchDropAgent
from zoomrl.agents.patchdrop.config import EPOCH_FIELDS, STAGE_FIELDS
from zoomrl.core.checkpoint import read_latest
from zoomrl.core.config import ConfigError
from zoomrl.core.runner import WEIGHTS, rewind_run

TRAINED = {
    "classifiers": ("hr", "lr"),
    "pretrain": ("policy",),
    "finetune": ("policy", "hr"),
    "two_stream": ("policy",),
}
"""The networks each stage trains (what :meth:`PatchDropAgent.configure` compiles)."""

Arrays = dict[str, list[np.ndarray]]


def sigma_tag(sigma: float) -> str:
    return f"sigma{float(sigma):g}"


def group(stage: str, net: str, sigma: float | None = None) -> str:
    """The file group of ``net`` as ``stage`` leaves it (stage 2: the policy of penalty ``sigma``)."""
    return f"{stage}/{sigma_tag(sigma)}/{net}" if stage == "pretrain" else f"{stage}/{net}"  # type: ignore[arg-type]


def groups_after(stage: str, sigma: float) -> dict[str, str]:
    """Each network of a model whose last trained stage is ``stage``: the group holding it (``sigma``: the stage-2
    policy taken, the one fine-tuning starts from or the curve point shown)."""
    out: dict[str, str] = {}
    for s in STAGES[: STAGES.index(stage) + 1]:
        out.update({net: group(s, net, sigma) for net in TRAINED[s]})
    return out


def model_after(
    config: Any,
    groups: Mapping[str, list[np.ndarray]],
    stage: str,
    sigma: float,
    image_shape: tuple,
    num_classes: int,
    seed: int,
    classifiers: tuple[Any, Any] | None = None,
) -> PatchDropAgent:
    """The model a run's ``groups`` hold after ``stage``, penalising with ``sigma`` (stage 2: the policy of that
    penalty; the later stages start from ``pretrain_sigma``'s). ``classifiers``: an ``(hr, lr)`` pair to share,
    left as it is (only the policy is read)."""
    agent = PatchDropAgent(image_shape, num_classes, config, seed=seed, classifiers=classifiers, sigma=sigma)
    nets = groups_after(stage, config.pretrain_sigma if stage != "pretrain" else sigma)
    agent.set_networks({n: groups[g] for n, g in nets.items() if classifiers is None or n == "policy"})
    return agent


def stage_agents(
    config: Any,
    stage: str,
    final: Mapping[str, list[np.ndarray]],
    image_shape: tuple,
    num_classes: int,
    batches: int | None = None,
) -> list[PatchDropAgent]:
    """The agents ``stage`` trains, configured, with their inputs from the finished stages' ``final`` arrays (stage 2:
    one agent per penalty of ``sigma_curve``, sharing the classifiers). Seeds: ``(seed, stage)`` for the frameworks,
    ``(seed, stage, agent)`` for each agent, so a stage starts the same whether run alone, after the stages before it
    in one process, or again after an interruption. ``batches``: updates per epoch, over which (times the stage's
    epochs) a policy stage anneals alpha."""
    from zoomrl.agents.seeding import seed_everything

    k = STAGES.index(stage) + 1
    seed_everything(int(np.random.SeedSequence([config.seed, k]).generate_state(1)[0]))
    sigmas = config.stage_sigmas(stage)
    agents: list[PatchDropAgent] = []
    for j in range(len(sigmas)):
        shared = (agents[0].hr, agents[0].lr) if agents else None
        agent = PatchDropAgent(
            image_shape, num_classes, config, seed=np.random.SeedSequence([config.seed, k, j]), classifiers=shared
        )
        if k > 1 and not agents:
            inputs = groups_after(STAGES[k - 2], config.pretrain_sigma)
            missing = sorted(g for g in inputs.values() if g not in final)
            if missing:
                raise ValueError(
                    f"stage {k} ({stage}) starts from stage {k - 1} ({STAGES[k - 2]}), which this run has not "
                    f"finished (no {', '.join(missing)}); give stage {k - 1} epochs or train it first"
                )
            agent.set_networks({net: final[g] for net, g in inputs.items()})
        agents.append(agent)
    for agent, sigma in zip(agents, sigmas):  # compiled once all are built, as before the run driver
        agent.configure(stage, sigma=sigma)
        if stage != "classifiers" and batches is not None:  # the alpha schedule spans the stage's updates
            agent.schedule(config.stage_epochs(stage) * batches)
    return agents


def whole_batches(n: int, batch: int) -> int:
    """Whole batches per epoch of ``n`` images (a last, smaller one would trace the update a second time)."""
    return n // batch if n >= batch else 1


def stage_epoch(
    agent: PatchDropAgent,
    images: np.ndarray,
    labels: np.ndarray,
    batch: int,
    progress: Callable[[int], Any],
    transform: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
) -> dict[str, float]:
    """One pass of ``agent`` over the images in whole batches, in a new order from the agent's generator
    (``transform``: a batch's augmentation, drawn from it too); the mean of each value ``learn`` returns."""
    order = agent.rng.permutation(len(images))
    n, sums = whole_batches(len(images), batch), {}
    for i in range(n):
        idx = order[i * batch : (i + 1) * batch]
        x = images[idx] if transform is None else transform(images[idx], agent.rng)
        for key, v in agent.learn(LabelledBatch(x, labels[idx])).items():
            sums[key] = sums.get(key, 0.0) + v
        progress(1)
    return {key: v / n for key, v in sums.items()}


def write_groups(path: str | Path, groups: Mapping[str, list[np.ndarray]], finished: list[str]) -> None:
    """``groups`` (name -> a network's weights) and the ``finished`` stages into one HDF5 file."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["finished"] = json.dumps(list(finished))
        for name, arrays in groups.items():
            g = f.create_group(name)
            for i, w in enumerate(arrays):
                g.create_dataset(str(i), data=w)


def read_groups(path: str | Path) -> tuple[Arrays, list[str]]:
    """What :func:`write_groups` wrote; a missing or foreign file is a one-line error naming it."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        with h5py.File(path, "r") as f:
            if "finished" not in f.attrs:
                raise ValueError(f"{path}: not a patchdrop run's weights file (no 'finished' attribute)")
            finished = json.loads(str(f.attrs["finished"]))
            out: Arrays = {}

            def visit(name: str, node: Any) -> None:
                if isinstance(node, h5py.Group) and node and all(isinstance(v, h5py.Dataset) for v in node.values()):
                    out[name] = [np.asarray(node[str(i)]) for i in range(len(node))]

            f.visititems(visit)
    except OSError as exc:
        raise ValueError(f"{path}: damaged weights file ({exc})") from None
    return out, finished


def read_run(run_dir: Path) -> tuple[Arrays, list[str]]:
    """The networks and the finished stages in a run's last checkpoint, what testing reads; no checkpoint, or one
    before stage 1 has finished, is a one-line error."""
    latest = read_latest(run_dir)
    if latest is None:
        raise FileNotFoundError(f"{run_dir}: no finished epoch (latest.json); train first")
    groups, finished = read_groups(run_dir / latest["files"][WEIGHTS])
    if "classifiers" not in finished:
        raise FileNotFoundError(f"{run_dir}: stage 1 (classifiers) has not finished; nothing to test")
    return groups, finished


def check_stage_epochs(saved: Any, config: Any, done: int, retrain: int | None = None) -> None:
    """A run continued from its ``done`` epochs keeps the epoch counts of the stages it has finished, and gives the
    stage in progress at least its epochs done (the run's epochs map to stages through them); ``retrain``: the
    0-based stage that ``--stage`` retrains, whose earlier stages keep their counts."""
    for k, (s, end) in enumerate(zip(STAGES, saved.stage_ends())):
        n, started = saved.stage_epochs(s), end - saved.stage_epochs(s)
        if retrain is not None:
            if k < retrain and n != config.stage_epochs(s):
                raise ConfigError(
                    f"--stage {retrain + 1}: stage {k + 1} ({s}) was trained with {n} epochs, "
                    f"this run says {config.stage_epochs(s)}"
                )
            continue
        finished_other = n and end <= done and n != config.stage_epochs(s)
        if finished_other or started < done < end and config.stage_epochs(s) < done - started:
            raise ConfigError(
                f"--resume: stage {k + 1} ({s}) has {min(n, done - started)} of its {n} epochs done, "
                f"this run gives it {config.stage_epochs(s)}; change only the epochs of stages not finished"
            )


def finished_before(run_dir: Path, weights: Path, saved: Any, stage: str) -> tuple[Arrays, list[str]]:
    """The networks of the stages before ``stage`` in the run's last ``weights`` file, and those stages; one that
    has epochs but has not finished is an error naming the command that trains it."""
    k = STAGES.index(stage)
    before = [s for s in STAGES[:k] if saved.stage_epochs(s) > 0]
    groups, finished = read_groups(weights)
    for s in before:
        if s not in finished:
            n = STAGES.index(s) + 1
            raise FileNotFoundError(
                f"{run_dir}: stage {n} ({s}) has not finished; run `python -m zoomrl patchdrop train --stage {n}` "
                f"with this --model-dir first"
            )
    return {g: w for g, w in groups.items() if g.split("/")[0] in before}, before


def run_plan(config: Any, stage: str | None, resume: bool, changeable: set[str]) -> tuple[int, bool, set[str]]:
    """The run's epochs for ``stage`` (``None``: every stage), whether it retrains ``stage`` (``--stage N`` for a
    stage after the first, not ``--resume``: the run continues from the end of stage N - 1) and the fields that may
    differ from the saved run's: ``changeable``, the preset, every stage's epochs and, when retraining, the fields of
    stage N and later."""
    k = STAGES.index(stage) if stage else None
    if k is not None and not config.stage_epochs(stage):
        raise ConfigError(f"stage {k + 1} ({stage}) has 0 epochs in this configuration")
    retrain = bool(k) and not resume
    fields = set(changeable) | {"preset"} | set(EPOCH_FIELDS.values())
    fields |= {f for s in STAGES[k:] for f in STAGE_FIELDS[s]} if retrain else set()
    return (config.stage_ends()[k] if k is not None else config.run_epochs()), retrain, fields


def continue_run(
    run_dir: Path, config: Any, saved: Any, latest: Mapping[str, Any] | None, stage: str | None, retrain: bool
) -> None:
    """Before a run continues from its ``saved`` configuration and ``latest`` checkpoint: the stages' epoch counts
    checked (:func:`check_stage_epochs`) and, when retraining ``stage``, the run rewound to the end of the stage
    before it, its checkpoint holding the networks of the stages before it only."""
    k = STAGES.index(stage) if stage else None
    if retrain and (saved is None or latest is None):
        raise FileNotFoundError(
            f"{run_dir}: stage {k} ({STAGES[k - 1]}) has not finished; run `python -m zoomrl patchdrop "
            f"train --stage {k}` with this --model-dir first"
        )
    if saved is not None and latest is not None:
        check_stage_epochs(saved, config, int(latest["epoch"]), k if retrain else None)
    if retrain:
        keep, before = finished_before(run_dir, run_dir / latest["files"][WEIGHTS], saved, stage)
    if retrain and saved.stage_ends()[k - 1]:
        rewind_run(run_dir, saved.stage_ends()[k - 1], lambda p: write_groups(p, keep, before), {"agents": np.array(0)})


def stage_groups(stage: str, agents: list[PatchDropAgent]) -> Arrays:
    """The networks that ``agents`` train in ``stage``, by file group."""
    return {group(stage, net, a.sigma): w for a in agents for net, w in a.trained_arrays().items()}


def agents_state(agents: list[PatchDropAgent]) -> dict[str, np.ndarray]:
    """The training state of a stage's ``agents`` (optimizers, generators, counters) as one flat mapping."""
    out: dict[str, np.ndarray] = {"agents": np.array(len(agents))}
    for i, agent in enumerate(agents):
        out.update({f"a{i}/{k}": v for k, v in agent.get_state().items()})
    return out


def restore_agents(
    agents: list[PatchDropAgent], stage: str, groups: Mapping[str, list[np.ndarray]], state: Mapping[str, np.ndarray]
) -> None:
    """A stage cut short, rebuilt as it started: its ``agents`` given their saved weights (``groups``) and the
    training state :func:`agents_state` wrote."""
    if int(state.get("agents", -1)) != len(agents):
        k = STAGES.index(stage) + 1
        raise ValueError(f"it holds {state.get('agents')} agents' states, stage {k} has {len(agents)}")
    for i, agent in enumerate(agents):
        agent.set_networks({n: groups[group(stage, n, agent.sigma)] for n in agent.trained})
        agent.set_state({key[len(f"a{i}/") :]: v for key, v in state.items() if key.startswith(f"a{i}/")})
