"""Family ``patchdrop``: Uzkent and Ermon 2020, "Learning When and Where to Zoom With Deep RL".

``python -m zoomrl patchdrop train|test [--data digits|cifar10|cifar100] [--stage 1|2|3|4] [flags]``; see
``docs/patchdrop.md``.
"""

from zoomrl.experiments.patchdrop.cli import COMMANDS, build_parser, run

__all__ = ["COMMANDS", "build_parser", "run"]
