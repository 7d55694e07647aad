"""Family ``hierarchical``: Bellver et al. 2016, the zoom agent over a fixed hierarchy of subregions.

``python -m zoomrl hierarchical train|test [--model image_zooms|pool45_crops] [flags]``; the four top-level
scripts call the same code with their constants as the flags' defaults (see :mod:`.cli`).
"""

from zoomrl.experiments.hierarchical.cli import COMMANDS, build_parser, run

__all__ = ["COMMANDS", "build_parser", "run"]
