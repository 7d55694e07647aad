"""``python -m zoomrl patchdrop test``: accuracy against the mean number of patches kept, on the test split.

Reads the trained model folder (its ``config.json`` fixes the data and networks) and writes into the output folder
``results.json``, ``accuracy_vs_patches.png``, ``config.json`` and, with ``--bool-draw``, ``pictures/<i>.png`` for
the first test images. Accuracies are percentages over all test images. Rows:

* ``hr_classifier``: stage 1's HR classifier with all 16 patches; ``lr_classifier``: stage 1's LR classifier;
* ``policy_curve``: each stage-2 policy (one per penalty sigma, HR classifier of stage 1), greedy (``p >= 0.5``);
* ``finetuned``: stage 3's policy and HR classifier (PatchDrop); ``two_stream``: stage 4's policy with the
  two-stream output;
* every policy row's ``random_accuracy``: the same classifier on the same number of patches per image, chosen
  uniformly at random (mean over ``random_draws`` draws).

``targets`` checks the fine-tuned policy against the issue's targets: within 1 point of the HR classifier, at most
half of the patches, at least 10 (and issue 20's 20) points above random sampling.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from zoomrl.agents.patchdrop import patches as pt
from zoomrl.core.io import write_json
from zoomrl.eval.patchdrop import plot_run


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def hr_scores(agent: Any, images: np.ndarray, actions: np.ndarray | None, batch: int) -> np.ndarray:
    return np.concatenate(
        [agent.hr_scores(images[s], None if actions is None else actions[s]) for s in _chunks(len(images), batch)]
    )


def lr_scores(agent: Any, images: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate([agent.lr_scores(images[s]) for s in _chunks(len(images), batch)])


def greedy(agent: Any, images: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate([agent.act(images[s], explore=False) for s in _chunks(len(images), batch)])


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
) -> tuple[dict[str, Any], np.ndarray]:
    """The greedy policy's accuracy and mean patches, and random sampling at the same per-image counts."""
    actions = greedy(agent, images, batch)
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


def draw(
    images: np.ndarray, labels: np.ndarray, actions: np.ndarray, preds: np.ndarray, grid: int, folder: Path
) -> list[str]:
    """One PNG per image: the image, and what the HR classifier sees (dropped patches dimmed, kept ones framed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from zoomrl.core.io import atomic_path

    written = []
    for i in range(len(images)):
        img = images[i]
        show = img[..., 0] if img.shape[-1] == 1 else img
        cmap = "gray" if img.shape[-1] == 1 else None
        fig = Figure(figsize=(5.0, 2.8), dpi=100)
        FigureCanvasAgg(fig)
        h, w = img.shape[:2]
        ph, pw = h / grid, w / grid
        for j, (title, picture) in enumerate((("image", show), ("kept patches", None))):
            ax = fig.add_subplot(1, 2, j + 1)
            ax.imshow(show, cmap=cmap, vmin=0, vmax=1, alpha=1.0 if picture is not None else 0.25)
            if picture is None:
                kept = pt.mask_patches(img[None], actions[i : i + 1], grid)[0]
                ax.imshow(
                    np.ma.masked_where(
                        pt.patch_mask(actions[i : i + 1], h, w, grid)[0, ..., 0] == 0,
                        kept[..., 0] if img.shape[-1] == 1 else kept[..., 0],
                    ),
                    cmap="gray",
                    vmin=0,
                    vmax=1,
                ) if img.shape[-1] == 1 else ax.imshow(kept)
                for k in np.flatnonzero(actions[i]):
                    ax.add_patch(
                        Rectangle(
                            ((k % grid) * pw - 0.5, (k // grid) * ph - 0.5),
                            pw,
                            ph,
                            fill=False,
                            edgecolor="lime",
                            linewidth=1.2,
                        )
                    )
                title = f"{int(actions[i].sum())}/{grid * grid} kept, predicted {int(preds[i])}"
            else:
                title = f"label {int(labels[i])}"
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.tight_layout()
        path = folder / f"{i:03d}.png"
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png")
        written.append(str(path))
    return written


def run_test(
    cfg: Any,
    model_dir: str | Path,
    output_dir: str | Path,
    bool_draw: bool = False,
    quiet: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Evaluate every finished stage of the run in ``model_dir`` (``cfg``: its saved configuration, with the test
    settings of the command line; ``cfg.seed`` seeds the random baselines); writes and returns the results."""
    from tqdm import tqdm

    from zoomrl.agents.patchdrop.agent import PatchDropAgent
    from zoomrl.agents.patchdrop.stages import groups_after, read_groups
    from zoomrl.agents.seeding import seed_everything
    from zoomrl.core.checkpoint import read_latest
    from zoomrl.data.patch_digits import NUM_CLASSES, load_for

    model_dir, output_dir = Path(model_dir), Path(output_dir)
    latest = read_latest(model_dir)
    if latest is None:
        raise FileNotFoundError(f"{model_dir}: no finished epoch (latest.json); train first")
    groups, finished = read_groups(model_dir / latest["files"]["weights.h5"])
    if "classifiers" not in finished:
        raise FileNotFoundError(f"{model_dir}: stage 1 (classifiers) has not finished; nothing to test")
    seed = cfg.seed
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    images, labels = load_for(cfg, "test")
    num_classes = NUM_CLASSES[cfg.dataset]
    batch, draws = cfg.eval_batch, cfg.random_draws

    def agent_after(stage: str, sigma: float, classifiers: tuple | None = None) -> PatchDropAgent:
        agent = PatchDropAgent(images.shape[1:], num_classes, cfg, seed=seed, classifiers=classifiers, sigma=sigma)
        nets = groups_after(stage, cfg.pretrain_sigma if stage != "pretrain" else sigma)
        agent.set_networks({n: groups[g] for n, g in nets.items() if classifiers is None or n == "policy"})
        return agent

    base = agent_after("classifiers", cfg.pretrain_sigma)
    steps = ["classifiers"]
    if "pretrain" in finished:
        steps += [f"pretrain sigma {s:g}" for s in cfg.sigma_curve]
    steps += [s for s in ("finetune", "two_stream") if s in finished]
    results: dict[str, Any] = {
        "dataset": cfg.dataset,
        "test_images": int(len(images)),
        "patches": base.patches,
        "seed": seed,
        "units": "accuracy in percent of the test images",
        "model_dir": str(model_dir),
    }
    final = None
    with tqdm(total=len(steps), desc="test", disable=quiet, unit="model") as bar:
        results["hr_classifier"] = {
            "accuracy": accuracy(hr_scores(base, images, None, batch).argmax(1), labels),
            "mean_patches": base.patches,
        }
        results["lr_classifier"] = {
            "accuracy": accuracy(lr_scores(base, images, batch).argmax(1), labels),
            "mean_patches": 0,
        }
        bar.update()
        if "pretrain" in finished:
            results["policy_curve"] = []
            for s in cfg.sigma_curve:
                agent = agent_after("pretrain", s, classifiers=(base.hr, base.lr))
                row, acts = evaluate_policy(agent, images, labels, batch, draws, rng)
                results["policy_curve"].append(row)
                final = (agent, acts, False)
                bar.update()
        for stage, key, sigma in (
            ("finetune", "finetuned", cfg.finetune_sigma),
            ("two_stream", "two_stream", cfg.two_stream_sigma),
        ):
            if stage not in finished:
                continue
            agent = agent_after(stage, sigma)
            row, acts = evaluate_policy(agent, images, labels, batch, draws, rng, two_stream=stage == "two_stream")
            row["hr_all_patches_accuracy"] = accuracy(hr_scores(agent, images, None, batch).argmax(1), labels)
            results[key] = row
            final = (agent, acts, stage == "two_stream")
            bar.update()
    if results.get("finetuned"):
        f, hr = results["finetuned"], results["hr_classifier"]["accuracy"]
        results["targets"] = {
            "accuracy_gap_to_hr_points": round(hr - f["accuracy"], 2),
            "within_1_point_of_hr": bool(hr - f["accuracy"] <= 1.0),
            "at_most_half_the_patches": bool(f["mean_patches"] <= base.patches / 2),
            "gain_over_random_points": round(f["accuracy"] - f["random_accuracy"], 2),
            "beats_random_by_10_points": bool(f["accuracy"] - f["random_accuracy"] >= 10.0),
            "beats_random_by_20_points": bool(f["accuracy"] - f["random_accuracy"] >= 20.0),  # issue 20's margin
        }
    output_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(output_dir / "config.json")
    plot_run(results, output_dir / "accuracy_vs_patches.png")
    if bool_draw and final is not None and cfg.max_pictures:
        agent, acts, two = final
        n = min(cfg.max_pictures, len(images))
        preds = agent.predict(images[:n], acts[:n], two_stream=two)
        results["pictures"] = draw(images[:n], labels[:n], acts[:n], preds, agent.grid, output_dir / "pictures")
    results["seconds"] = round(time.perf_counter() - t0, 1)
    write_json(output_dir / "results.json", results)
    line = (
        f"test: {len(images)} images; HR {results['hr_classifier']['accuracy']}%, "
        f"LR {results['lr_classifier']['accuracy']}%"
    )
    for key in ("finetuned", "two_stream"):
        if results.get(key):
            r = results[key]
            line += (
                f"; {key} {r['accuracy']}% with {r['mean_patches']:.2f}/{base.patches} patches "
                f"(random {r['random_accuracy']}%)"
            )
    log(line + f"; results in {output_dir / 'results.json'}")
    return results
