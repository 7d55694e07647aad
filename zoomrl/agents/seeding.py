"""One seed for everything a run draws from: Python's ``random``, NumPy's global generator and Keras (and through
it the backend's generator). It lives with the agents, the layer that owns Keras; ``core`` seeds the plain-NumPy
part (:func:`zoomrl.core.seeding.seed_python_and_numpy`)."""

from __future__ import annotations

import keras

from zoomrl.core.seeding import seed_python_and_numpy


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and Keras's backend."""
    seed_python_and_numpy(seed)
    keras.utils.set_random_seed(seed)
