"""zoomrl: reinforcement-learning agents that decide where to look in an image (Keras 3).

Four families on one core: hierarchical (Bellver et al. 2016, the zoom DQN), active (Caicedo and Lazebnik 2015,
the box-deforming DQN), glimpse (Mnih et al. 2014, the recurrent attention model) and patchdrop (Uzkent and
Ermon 2020). Subpackages by concern, dependencies pointing one way (README "Code layout"): ``core``, ``data``,
``envs`` and ``eval`` are NumPy; ``vision`` and ``agents`` hold the Keras networks; ``experiments`` holds the CLI
(``python -m zoomrl FAMILY train|test``) and one package per family.
"""

__version__ = "0.2.0"
"""The package's one version: pyproject.toml reads it from here (``[tool.setuptools.dynamic]``)."""
