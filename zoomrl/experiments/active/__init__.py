"""Family ``active``: Caicedo and Lazebnik 2015, a box that moves, scales and triggers (active localisation).

``python -m zoomrl active train|test [flags]``; see :mod:`.cli` and docs/active.md.
"""

from zoomrl.experiments.active.cli import COMMANDS, build_parser, run

__all__ = ["COMMANDS", "build_parser", "run"]
