"""Family ``glimpse``: RAM, the recurrent attention model (Mnih et al. 2014), and its landmark-regression variant.

``python -m zoomrl glimpse train|test --task classify|regress [--data digits|mnist|VOC-FOLDER] [flags]``;
see :mod:`.cli` and ``docs/glimpse.md``.
"""

from zoomrl.experiments.glimpse.cli import COMMANDS, build_parser, run

__all__ = ["COMMANDS", "build_parser", "run"]
