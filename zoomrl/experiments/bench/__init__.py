"""``python -m zoomrl benchmark``: the speed of all four families against what the machine can do (see .cli)."""

from zoomrl.experiments.bench.cli import COMMANDS, build_parser, run

__all__ = ["COMMANDS", "build_parser", "run"]
