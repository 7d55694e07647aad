"""PatchDrop's NumPy side: patch masks, the low-resolution view, exploration mixing, sampling, the reward and the
self-critical advantage (Uzkent and Ermon 2020, section 3). No Keras here; every function is checked against a
hand computation in ``tests/test_patchdrop_rl.py``.

An image is cut into a ``grid`` x ``grid`` array of equal patches (P = 16 for ``grid = 4``), numbered row by row:
patch ``k`` covers rows ``(k // grid) * ph ... + ph`` and columns ``(k % grid) * pw ... + pw``.
"""

from __future__ import annotations

import numpy as np


def patch_mask(actions: np.ndarray, height: int, width: int, grid: int = 4) -> np.ndarray:
    """``(B, grid*grid)`` 0/1 actions -> ``(B, height, width, 1)`` float32 pixel masks (1 = patch kept)."""
    actions = np.asarray(actions)
    if actions.ndim != 2 or actions.shape[1] != grid * grid:
        raise ValueError(f"actions must be (batch, {grid * grid}), received shape {actions.shape}")
    if height % grid or width % grid:
        raise ValueError(f"image size {height}x{width} is not divisible into a {grid}x{grid} grid of patches")
    ph, pw = height // grid, width // grid
    cells = actions.reshape(-1, grid, grid).astype(np.float32)
    return np.repeat(np.repeat(cells, ph, axis=1), pw, axis=2)[..., None]


def mask_patches(images: np.ndarray, actions: np.ndarray, grid: int = 4) -> np.ndarray:
    """Keep the sampled patches of ``images`` ``(B, H, W, C)`` at full resolution, zero the others."""
    images = np.asarray(images, np.float32)
    return images * patch_mask(actions, images.shape[1], images.shape[2], grid)


def low_resolution(images: np.ndarray, size: int) -> np.ndarray:
    """``(B, H, W, C)`` -> ``(B, size, size, C)`` by averaging ``H/size`` x ``W/size`` blocks (H, W multiples)."""
    images = np.asarray(images, np.float32)
    b, h, w, c = images.shape
    if h % size or w % size:
        raise ValueError(f"image size {h}x{w} is not a multiple of the low-resolution size {size}")
    return images.reshape(b, size, h // size, size, w // size, c).mean(axis=(2, 4))


def mix_probabilities(probs: np.ndarray, alpha: float) -> np.ndarray:
    """Exploration: ``p' = alpha * p + (1 - alpha) * (1 - p)`` (``alpha = 1``: no exploration)."""
    probs = np.asarray(probs, np.float64)
    return alpha * probs + (1.0 - alpha) * (1.0 - probs)


def greedy_actions(probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The greedy policy: keep patch ``k`` when ``p_k >= threshold`` (the paper's 0.5; a higher one keeps fewer
    patches, the operating point ``--patch-budget`` picks); ``(B, P)`` float32 0/1."""
    return (np.asarray(probs) >= threshold).astype(np.float32)


def sample_actions(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Independent Bernoulli draws, ``(B, P)`` float32 0/1."""
    probs = np.asarray(probs)
    return (rng.random(probs.shape) < probs).astype(np.float32)


def random_actions(counts: np.ndarray, patches: int, rng: np.random.Generator) -> np.ndarray:
    """For each row, ``counts[i]`` distinct patches drawn uniformly from ``patches``: ``(B, patches)`` 0/1."""
    counts = np.asarray(counts, np.int64)
    order = np.argsort(rng.random((len(counts), patches)), axis=1)
    ranks = np.argsort(order, axis=1)
    return (ranks < counts[:, None]).astype(np.float32)


def reward(correct: np.ndarray, actions: np.ndarray, sigma: float) -> np.ndarray:
    """``1 - (S/P)^2`` where the prediction is right (S patches sampled of P), ``-sigma`` where it is wrong."""
    actions = np.asarray(actions, np.float64)
    used = actions.sum(axis=1) / actions.shape[1]
    return np.where(np.asarray(correct, bool), 1.0 - used**2, -float(sigma))


def self_critical_advantage(reward_sampled: np.ndarray, reward_greedy: np.ndarray) -> np.ndarray:
    """REINFORCE with the greedy policy's reward as the baseline: ``r(sampled) - r(greedy)``."""
    return np.asarray(reward_sampled, np.float64) - np.asarray(reward_greedy, np.float64)


def two_stream(scores_hr: np.ndarray, scores_lr: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """``s = (S/P) * s_HR + (1 - S/P) * s_LR`` per image (section 3.5)."""
    actions = np.asarray(actions, np.float64)
    used = (actions.sum(axis=1) / actions.shape[1])[:, None]
    return used * np.asarray(scores_hr) + (1.0 - used) * np.asarray(scores_lr)


def random_patch_masks(
    n: int, patches: int, max_rate: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Stage 1's masking: per image a rate ``r ~ U[0, max_rate]``, then ``round(r * patches)`` distinct patches
    drawn uniformly are dropped. Returns the kept patches ``(n, patches)`` 0/1 (as :func:`mask_patches` takes
    them) and the rates ``(n,)``. The classifier then learns to read images with patches missing, as the policy
    will show it."""
    if not 0.0 <= max_rate <= 1.0:
        raise ValueError(f"the masking rate must lie in [0, 1], received {max_rate}")
    rates = rng.uniform(0.0, max_rate, n)
    dropped = np.rint(rates * patches).astype(np.int64)
    return random_actions(patches - dropped, patches, rng), rates


def annealed_alpha(start: float, final: float, step: int, total: int) -> float:
    """Exploration ``alpha`` of update ``step`` (0-based) of ``total``: linear from ``start`` at the first update
    to ``final`` at the last, ``final`` after it (``final = start``: constant). Exploration ``1 - alpha`` shrinks
    as the policy firms up."""
    if total <= 1:
        return float(final if step >= 1 else start)
    return float(start + (final - start) * min(step / (total - 1), 1.0))
