"""Baselines that run through the same environments on the same images: a random agent and an oracle.

* Random agent: uniformly random actions, a uniformly random score per detection (the paper's lower curve).
* Oracle (upper bound of a hierarchy): knows the ground truth (``info["oracle_action"]``, see
  :meth:`zoomrl.envs.zoom.ImageEpisode.oracle_action`); its score is the IoU of its box, so its precision-recall
  curve shows how far the fixed hierarchy can go. It runs one search per object of the image: knowing the ground
  truth, it would not search an image that has nothing left.
* Whole image (:func:`whole_image_records`): the trivial detector that returns the whole image once per image with
  one constant score; an agent that zooms must beat it by far to be worth its windows.

Policies take ``(indices, q_values, infos)`` and return actions, as :func:`zoomrl.envs.vector.run_vector` expects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from zoomrl.core.geometry import iou_matrix


def random_policy(seed: int, num_actions: int) -> Callable:
    """Uniform over ``num_actions``, one generator per image (seeded by ``seed`` and ``info["image_index"]``)."""
    rngs: dict[int, np.random.Generator] = {}

    def policy(indices: np.ndarray, q: np.ndarray | None, infos: list[dict[str, Any]]) -> np.ndarray:
        out = np.empty(len(indices), dtype=np.int64)
        for j, info in enumerate(infos):
            k = int(info["image_index"])
            rng = rngs.setdefault(k, np.random.default_rng([seed, k, 11]))
            out[j] = int(rng.integers(num_actions))
        return out

    return policy


def oracle_policy(indices: np.ndarray, q: np.ndarray | None, infos: list[dict[str, Any]]) -> np.ndarray:
    """The oracle's actions, read from each environment's ``info``."""
    return np.array([info["oracle_action"] for info in infos], dtype=np.int64)


def oracle_searches(n_objects: int, max_searches: int) -> int:
    """One search per non-difficult object of the image (at least one), within the test limit."""
    return max(1, min(max_searches, n_objects))


def score_random(records: Sequence[dict[str, Any]], seed: int) -> None:
    """Give each triggered search of the random agent a uniform random score, in place."""
    rng = np.random.default_rng([seed, 13])
    for record in records:
        for search in record["searches"]:
            if search["triggered"]:
                search["score"] = float(rng.random())


def score_oracle(records: Sequence[dict[str, Any]]) -> None:
    """Score each triggered search of the oracle by the IoU of its box with the best ground truth, in place."""
    for record in records:
        gt = np.array([g["box"] for g in record["ground_truth"]], dtype=np.float64).reshape(-1, 4)
        for search in record["searches"]:
            if search["triggered"]:
                search["score"] = float(iou_matrix(np.asarray(search["box"])[None], gt).max()) if len(gt) else 0.0


def whole_image_records(records: Sequence[dict[str, Any]], score: float = 1.0) -> list[dict[str, Any]]:
    """The trivial detector beside the agent: per image, one triggered one-window search whose box is the whole
    image, every detection scored ``score``.

    It needs no environment: each record's ``width``, ``height`` and ``ground_truth`` suffice, so the agent's
    own records (or any baseline's) give it on exactly the same images. With one score for every detection, the
    AP's stable sort ranks them in record order (the data set's order), as the VOC devkit would; what it measures
    is how often the whole image already covers an object at IoU >= 0.5, and how many images hold none."""
    out = []
    for record in records:
        box = [0.0, 0.0, float(record["width"]), float(record["height"])]
        # No action is logged (the trigger is family-specific); the evaluation reads the box, score and steps.
        search = {
            "windows": [box],
            "actions": [],
            "q_values": None,
            "triggered": True,
            "box": box,
            "score": float(score),
            "steps": 1,
        }
        out.append(
            {**{k: v for k, v in record.items() if k != "searches"}, "searches": [search], "windows_analysed": 1}
        )
    return out
