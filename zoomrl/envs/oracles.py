"""Baselines run by the same environment code on the same images: a random agent and an oracle.

* Random agent: uniformly random actions, a uniformly random score per detection (the paper's lower curve).
* Oracle (upper bound of a hierarchy): knows the ground truth; triggers once the window's IoU with a remaining
  object is >= 0.5, otherwise moves to the child with the highest IoU, and triggers when no child improves.
  Its score is the IoU of its box, so its precision-recall curve shows how far the fixed hierarchy can go. It
  runs one search per object of the image (:func:`limit_searches_to_objects`): knowing the ground truth, it
  would not search an image that has nothing left.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from zoomrl.core.geometry import NUM_ACTIONS, TRIGGER, children, iou_matrix
from zoomrl.envs.zoom import ImageEpisode


def random_policy(seed: int) -> Callable[[ImageEpisode, np.ndarray | None], int]:
    """Uniform over the six actions, one generator per image (seeded by ``seed`` and the image index)."""
    rngs: dict[int, np.random.Generator] = {}

    def policy(episode: ImageEpisode, q: np.ndarray | None) -> int:
        rng = rngs.setdefault(episode.index, np.random.default_rng([seed, episode.index, 11]))
        return int(rng.integers(NUM_ACTIONS))

    return policy


def oracle_policy(episode: ImageEpisode, q: np.ndarray | None = None) -> int:
    """Greedy on the true IoU (best over the objects still to find): see the module doc."""
    available = episode.available
    if not available.any():
        return TRIGGER
    gt = episode.gt_boxes[available]
    current = float(iou_matrix(np.asarray(episode.window)[None], gt).max())
    if current >= episode.trigger_iou:
        return TRIGGER
    child_ious = iou_matrix(children(episode.window, episode.scale), gt).max(axis=1)
    best = int(np.argmax(child_ious))
    return best if child_ious[best] > current else TRIGGER


def limit_searches_to_objects(episode: ImageEpisode) -> None:
    """Give the oracle one search per non-difficult object of its image (at least one), within the test limit."""
    n = int((~episode.difficult).sum())
    episode.max_searches = max(1, min(episode.max_searches, n))


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
