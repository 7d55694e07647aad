"""``python -m zoomrl FAMILY COMMAND [flags]`` (also installed as ``zoomrl``).

Families: ``hierarchical`` (Bellver et al. 2016), ``active`` (Caicedo and Lazebnik 2015), ``glimpse`` (RAM,
Mnih et al. 2014), ``patchdrop`` (Uzkent and Ermon 2020); and ``sweep FAMILY`` (one agent per class on Ray Tune).
Each family lives in ``zoomrl/experiments/<family>/`` and exposes ``COMMANDS``, ``build_parser`` and ``run``
(see :mod:`zoomrl.experiments.common`); adding one is one line in :data:`FAMILIES`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

from zoomrl.experiments.common import quiet_backend, run_guarded

FAMILIES = {
    "hierarchical": "zoomrl.experiments.hierarchical",
    "active": "zoomrl.experiments.active",
    "glimpse": "zoomrl.experiments.glimpse",
    "patchdrop": "zoomrl.experiments.patchdrop",
    "sweep": "zoomrl.experiments.sweep",
    "benchmark": "zoomrl.experiments.bench",
}

USAGE = (
    "usage: python -m zoomrl FAMILY COMMAND [flags]\n"
    "  FAMILY: hierarchical | active | glimpse | patchdrop   COMMAND: train | test (hierarchical: also demo)\n"
    "  python -m zoomrl sweep FAMILY --classes all|a,b [flags]\n"
    "  python -m zoomrl benchmark FAMILY|all [--quick] [--backend tensorflow|jax|torch|all] [--output FILE]\n"
    "  python -m zoomrl FAMILY COMMAND --help   lists a command's flags"
)


def family_module(name: str) -> Any:
    if name not in FAMILIES:
        raise ValueError(f"unknown family '{name}'; expected one of {', '.join(FAMILIES)}")
    try:
        return importlib.import_module(FAMILIES[name])
    except ModuleNotFoundError as exc:
        if exc.name == FAMILIES[name]:
            raise ValueError(f"family '{name}' is not available in this version") from None
        raise


def main(argv: Sequence[str] | None = None, constants: dict[str, Any] | None = None) -> int:
    """Dispatch ``FAMILY COMMAND [flags]``; ``constants`` are a top-level script's defaults."""
    quiet_backend()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    name = argv[0]
    if name not in FAMILIES:
        print(f"error: unknown family '{name}'; expected one of {', '.join(FAMILIES)}", file=sys.stderr)
        return 2
    module = family_module(name)
    commands = tuple(module.COMMANDS)
    if name in ("sweep", "benchmark"):  # tools over the families: no command word
        command, rest = name, argv[1:]
    else:
        if len(argv) < 2 or argv[1] not in commands:
            got = argv[1] if len(argv) > 1 else "nothing"
            print(f"error: {name} takes a command, one of {', '.join(commands)}; received {got}", file=sys.stderr)
            return 2
        command, rest = argv[1], argv[2:]
    parser = module.build_parser(command, constants)
    parser.prog = f"python -m zoomrl {name}" + ("" if name in ("sweep", "benchmark") else f" {command}")
    args = parser.parse_args(rest)
    return run_guarded(lambda: module.run(command, args), command)


def script_main(family: str, command: str, constants: dict[str, Any], argv: Sequence[str] | None = None) -> int:
    """Entry point of the top-level scripts: their constants become the flags' defaults."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return main([family, command, *argv], constants=constants)
