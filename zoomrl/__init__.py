"""zoomrl: reinforcement-learning agents that decide where to look in an image (Keras 3).

First system: Bellver et al., "Hierarchical Object Detection with Deep Reinforcement Learning" (NIPS 2016 Deep RL
workshop). See README.md for the layout: NumPy modules (boxes, voc, rewards, env, replay, evaluation, baselines)
below Keras ones (backbone, features, qnetwork, agent), with runner, training and testing on top.
"""

__version__ = "0.2.0"
"""The package's one version: pyproject.toml reads it from here (``[tool.setuptools.dynamic]``)."""
