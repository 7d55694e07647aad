"""PatchDrop's models scored on arrays: batched classifier scores and greedy actions, a policy's accuracy against
random patches at the same budget (:func:`evaluate_policy`), and every finished stage of a run in the order the test
reports them (:func:`evaluate_stages`). Here rather than in ``eval/`` because it runs the agent (Keras); the rows'
pictures, tables and targets are plain NumPy in :mod:`zoomrl.eval.patchdrop`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from zoomrl.agents.patchdrop import patches as pt
from zoomrl.agents.patchdrop.stages import model_after

THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(1, 20))
"""Keep thresholds :func:`pick_threshold` chooses among: 0.05, 0.10, ..., 0.95."""


def pick_threshold(curve: Sequence[Mapping[str, Any]], budget: float) -> dict[str, Any]:
    """The point of a validation ``curve`` (rows of ``threshold``, ``accuracy``, ``mean_patches``) with the highest
    accuracy among those keeping at most ``budget`` patches on average, ties to the fewer patches; when none
    does, the one keeping the fewest. The test split never takes part: it would choose on what it reports."""
    if not curve:
        raise ValueError("no threshold to choose from")
    fits = [p for p in curve if p["mean_patches"] <= budget]
    if not fits:
        return dict(min(curve, key=lambda p: (p["mean_patches"], -p["accuracy"])))
    return dict(max(fits, key=lambda p: (p["accuracy"], -p["mean_patches"])))


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def hr_scores(agent: Any, images: np.ndarray, actions: np.ndarray | None, batch: int) -> np.ndarray:
    return np.concatenate(
        [agent.hr_scores(images[s], None if actions is None else actions[s]) for s in _chunks(len(images), batch)]
    )


def lr_scores(agent: Any, images: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate([agent.lr_scores(images[s]) for s in _chunks(len(images), batch)])


def greedy(agent: Any, images: np.ndarray, batch: int, threshold: float = 0.5) -> np.ndarray:
    return np.concatenate(
        [agent.act(images[s], explore=False, threshold=threshold) for s in _chunks(len(images), batch)]
    )


def accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    return round(100.0 * float(np.mean(pred == labels)), 2)


def evaluate_policy(
    agent: Any,
    images: np.ndarray,
    labels: np.ndarray,
    batch: int,
    draws: int,
    rng: np.random.Generator,
    two_stream: bool = False,
    threshold: float = 0.5,
) -> tuple[dict[str, Any], np.ndarray]:
    """The greedy policy's (keep ``p >= threshold``) accuracy and mean patches, and random sampling at the same
    per-image counts."""
    actions = greedy(agent, images, batch, threshold)
    lr = lr_scores(agent, images, batch) if two_stream else None

    def predict(acts: np.ndarray) -> np.ndarray:
        s = hr_scores(agent, images, acts, batch)
        return (pt.two_stream(s, lr, acts) if two_stream else s).argmax(axis=1)

    counts = actions.sum(axis=1).astype(np.int64)
    rand = [accuracy(predict(pt.random_actions(counts, agent.patches, rng)), labels) for _ in range(draws)]
    row = {
        "sigma": agent.sigma,
        "accuracy": accuracy(predict(actions), labels),
        "mean_patches": round(float(counts.mean()), 3),
        "random_accuracy": round(float(np.mean(rand)), 2),
        "random_accuracy_draws": rand,
    }
    return row, actions


def threshold_curve(
    agent: Any, images: np.ndarray, labels: np.ndarray, batch: int, thresholds: tuple[float, ...] = THRESHOLDS
) -> list[dict[str, Any]]:
    """The greedy policy at each keep threshold: accuracy and mean patches on ``images`` (one policy pass)."""
    probs = np.concatenate([agent.probabilities(images[s]) for s in _chunks(len(images), batch)])
    rows = []
    for t in thresholds:
        acts = pt.greedy_actions(probs, t)
        rows.append(
            {
                "threshold": float(t),
                "accuracy": accuracy(hr_scores(agent, images, acts, batch).argmax(1), labels),
                "mean_patches": round(float(acts.sum(axis=1).mean()), 3),
            }
        )
    return rows


def budget_row(
    agent: Any,
    val: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    budget: float,
    batch: int,
    draws: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """The policy at the keep threshold chosen on the ``val`` images for at most ``budget`` patches on average
    (:func:`pick_threshold`), scored on ``test`` like :func:`evaluate_policy`; the row holds
    the threshold, the budget and the validation curve it was chosen from."""
    val_curve = threshold_curve(agent, *val, batch)
    choice = pick_threshold(val_curve, budget)
    row, _ = evaluate_policy(agent, *test, batch, draws, rng, threshold=choice["threshold"])
    row.update(
        budget=float(budget),
        threshold=choice["threshold"],
        val_accuracy=choice["accuracy"],
        val_mean_patches=choice["mean_patches"],
        val_images=int(len(val[0])),
        val_curve=val_curve,
    )
    return row


def classifier_rows(agent: Any, images: np.ndarray, labels: np.ndarray, batch: int) -> dict[str, Any]:
    """The rows of stage 1's classifiers: the HR one on all patches, the LR one on the low-resolution images."""
    return {
        "hr_classifier": {
            "accuracy": accuracy(hr_scores(agent, images, None, batch).argmax(1), labels),
            "mean_patches": agent.patches,
        },
        "lr_classifier": {"accuracy": accuracy(lr_scores(agent, images, batch).argmax(1), labels), "mean_patches": 0},
    }


def evaluation_steps(config: Any, finished: list[str]) -> list[str]:
    """The models :func:`evaluate_stages` scores, one progress step each."""
    steps = ["classifiers"] + ([f"pretrain sigma {s:g}" for s in config.sigma_curve] if "pretrain" in finished else [])
    return steps + [s for s in ("finetune", "two_stream") if s in finished]


def evaluate_stages(
    config: Any,
    groups: Mapping[str, list[np.ndarray]],
    finished: list[str],
    data: tuple[np.ndarray, np.ndarray, int],
    rng: np.random.Generator,
    step: Callable[[], Any],
    val: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[dict[str, Any], tuple[Any, np.ndarray, bool] | None]:
    """Every finished stage's model on ``data`` (images, labels, classes) in this order, ``rng`` drawing the random
    baselines: the classifiers' rows, the stage-2 curve, the fine-tuned row (and, given the ``val`` split and a
    ``patch_budget``, the fine-tuned policy at the threshold chosen on ``val``: :func:`budget_row`) and the
    two-stream row; ``step`` after each model. Returns the rows and the last model scored as ``(agent, its greedy
    actions, two-stream)``."""
    images, labels, classes = data
    batch, draws = config.eval_batch, config.random_draws

    def agent_after(stage: str, sigma: float, classifiers: tuple | None = None) -> Any:
        return model_after(config, groups, stage, sigma, images.shape[1:], classes, config.seed, classifiers)

    base = agent_after("classifiers", config.pretrain_sigma)
    results: dict[str, Any] = {"patches": base.patches, **classifier_rows(base, images, labels, batch)}
    step()
    final = None
    if "pretrain" in finished:
        results["policy_curve"] = []
        for s in config.sigma_curve:
            agent = agent_after("pretrain", s, classifiers=(base.hr, base.lr))
            row, acts = evaluate_policy(agent, images, labels, batch, draws, rng)
            results["policy_curve"].append(row)
            final = (agent, acts, False)
            step()
    for stage, key, sigma in (
        ("finetune", "finetuned", config.finetune_sigma),
        ("two_stream", "two_stream", config.two_stream_sigma),
    ):
        if stage in finished:
            agent = agent_after(stage, sigma)
            row, acts = evaluate_policy(agent, images, labels, batch, draws, rng, two_stream=stage == "two_stream")
            row["hr_all_patches_accuracy"] = accuracy(hr_scores(agent, images, None, batch).argmax(1), labels)
            results[key] = row
            final = (agent, acts, stage == "two_stream")
            if stage == "finetune" and val is not None and config.patch_budget:
                budget = budget_row(agent, val, (images, labels), config.patch_budget, batch, draws, rng)
                results["finetuned_budget"] = {**budget, "hr_all_patches_accuracy": row["hr_all_patches_accuracy"]}
            step()
    return results, final
