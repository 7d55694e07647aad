"""Seeding of the plain-Python and NumPy generators (the Keras backend's generator is seeded one layer up, by
:func:`zoomrl.agents.seeding.seed_everything`, so that ``core`` stays free of Keras)."""

from __future__ import annotations

import random

import numpy as np


def seed_python_and_numpy(seed: int) -> None:
    """Seed Python's ``random`` and NumPy's global generator."""
    random.seed(seed)
    np.random.seed(seed)
