"""``python -m zoomrl sweep FAMILY --classes all|a,b,c [flags]``: one agent per class (train, then test) on Ray Tune,
and one table of AP per class with the mean. See :mod:`.cli` and docs/active.md."""

from zoomrl.experiments.sweep.cli import COMMANDS, build_parser, run

__all__ = ["COMMANDS", "build_parser", "run"]
