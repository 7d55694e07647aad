"""What every family's command line shares: common flags, one-line errors (exit code 2), interrupts.

A family module (``zoomrl/experiments/<family>/``) exposes ``COMMANDS``, ``build_parser(command, constants)``
and ``run(command, args)``; :mod:`zoomrl.experiments.cli` dispatches ``python -m zoomrl FAMILY COMMAND``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import import_module
from pathlib import Path
from typing import Any

INTERRUPTED_TRAIN = "interrupted: the last finished epoch's checkpoint is intact (continue with --resume)"
INTERRUPTED_OTHER = "interrupted: nothing was written for this run"


class UsageError(ValueError):
    """Nonsense on the command line; one line, exit code 2."""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received '{text}'")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, received '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, received '{text}'")
    return value


def keep_checkpoints(text: str) -> int | None:
    if text == "all":
        return None
    return positive_int(text)


def add_common_flags(
    parser: argparse.ArgumentParser, command: str, presets: Sequence[str], defaults: Mapping[str, Any]
) -> None:
    """The flags every family takes: ``--preset --seed --model-dir --quiet`` and, for ``train``,
    ``--epochs --resume --keep-checkpoints``; for ``test``, ``--output-dir --bool-draw``.

    ``defaults`` maps upper-case constant names (``PRESET``, ``SEED``, ``MODEL_DIR``, ``OUTPUT_DIR``, ``EPOCHS``,
    ``RESUME``, ``BOOL_DRAW``) to their defaults; absent ones default to None/False."""
    d = dict(defaults)
    add = parser.add_argument
    add(
        "--preset",
        default=d.get("PRESET", "fast"),
        choices=sorted(presets),
        help="hyperparameter preset (default: %(default)s)",
    )
    add("--seed", type=int, default=d.get("SEED", 0), help="seeds Python, NumPy and Keras (default: %(default)s)")
    add("--model-dir", default=d.get("MODEL_DIR"), help="checkpoints go here (default: %(default)s)")
    add("--quiet", action="store_true", help="no progress bars")
    if command == "train":
        add("--epochs", type=non_negative_int, default=d.get("EPOCHS"), help="epochs (default: the preset's)")
        add(
            "--resume",
            action=argparse.BooleanOptionalAction,
            default=d.get("RESUME", False),
            help="continue the run in the model folder after its last finished epoch",
        )
        add(
            "--keep-checkpoints",
            type=keep_checkpoints,
            default=d.get("KEEP_CHECKPOINTS", 3),
            metavar="N|all",
            help="keep the last N epochs' checkpoints, plus the best (default: %(default)s)",
        )
    if command == "test":
        add("--output-dir", default=d.get("OUTPUT_DIR"), help="outputs go here (default: %(default)s)")
        add(
            "--bool-draw",
            action=argparse.BooleanOptionalAction,
            default=d.get("BOOL_DRAW", False),
            help="draw one picture per test image",
        )


def add_search_flags(parser: argparse.ArgumentParser, skip_bad: bool = False) -> None:
    """The data flags of the value-based families (hierarchical, active) that are not configuration fields, in both
    commands: ``--skip-bad`` (``skip_bad``: its default, a top-level script's constant), ``--allow-large-images``."""
    add = parser.add_argument
    add(
        "--skip-bad",
        action=argparse.BooleanOptionalAction,
        default=skip_bad,
        help="skip unreadable images and malformed XML, counting them (default: %(default)s)",
    )
    add(
        "--allow-large-images",
        action="store_true",
        help="decode images above Pillow's decompression-bomb limit (default: refuse them)",
    )


def train_or_test(
    command: str,
    args: argparse.Namespace,
    package: str,
    config: Any,
    model_dir: str,
    output_dir: str,
    data: Sequence[str],
) -> None:
    """``train`` or ``test`` of a value-based family (hierarchical, active), whose two commands take the same
    flags: ``<package>.train.train`` or ``<package>.test.test``, imported only when called (the other one's
    imports are not paid for)."""
    run = getattr(import_module(f"{package}.{command}"), command)
    common = {"max_images": args.max_images, "skip_bad": args.skip_bad, "show_progress": not args.quiet}
    if command == "train":
        result = run(
            config,
            data,
            args.image_set,
            model_dir,
            resume=args.resume,
            keep_checkpoints=args.keep_checkpoints,
            **common,
        )
        print(f"done: {result['summary']}")
    else:
        run(
            config,
            data,
            args.image_set,
            args.checkpoint,
            Path(output_dir) / config.class_object,
            model_dir=model_dir,
            bool_draw=args.bool_draw,
            baselines=args.baselines,
            eval_split=getattr(args, "eval_split", "test"),
            **common,
        )


def quiet_backend() -> None:
    """Silence TensorFlow's start-up log noise (call before Keras is imported).

    TensorFlow 2.21 prints its C++ INFO lines (oneDNN, CUDA drivers, XLA service) before its logging honours
    ``TF_CPP_MIN_LOG_LEVEL``: the import runs with file descriptor 2 sent to /dev/null, and absl's stderr
    threshold is raised for what comes later. An import that fails is retried with stderr open, so its error
    shows. ``ZOOMRL_VERBOSE_BACKEND=1`` keeps everything."""
    if os.environ.get("ZOOMRL_VERBOSE_BACKEND"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_STDERRTHRESHOLD", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow" or "tensorflow" in sys.modules:
        return
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        import tensorflow as tf  # noqa: F401, PLC0415

        tf.config.list_physical_devices()  # device discovery logs too
    except Exception:  # noqa: BLE001 - shown by the import that follows, with stderr open
        pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def expected_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input, printed as one line (everything else is a bug: traceback)."""
    from zoomrl.core.checkpoint import RunLockedError
    from zoomrl.core.io import FileDamagedError

    return (ValueError, FileNotFoundError, OSError, RunLockedError, FileDamagedError, MemoryError)


def run_guarded(fn: Callable[[], Any], command: str = "train") -> int:
    """Run ``fn``; expected errors become one line on stderr and exit code 2; Ctrl-C and SIGTERM one line and 130.

    ``ZOOMRL_DEBUG=1`` shows the traceback instead."""
    previous = signal.signal(signal.SIGTERM, _sigterm) if hasattr(signal, "SIGTERM") else None
    try:
        fn()
    except expected_errors() as exc:
        if os.environ.get("ZOOMRL_DEBUG"):
            raise
        text = str(exc).strip().splitlines()
        print(f"error: {text[0] if text else type(exc).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(INTERRUPTED_TRAIN if command == "train" else INTERRUPTED_OTHER, file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def report_result(compute: Callable[[], Any], table: Callable[[Any], str], output: str | None = None) -> int:
    """A script's last step: ``compute()``, its ``table`` printed and, with ``output``, its result written as JSON;
    bad input is one line and exit code 2 (:func:`run_guarded`)."""

    def run() -> None:
        from zoomrl.core.io import write_json

        result = compute()
        print(table(result))
        if output:
            write_json(output, result)

    return run_guarded(run, "script")


def saved_run_config(
    config_cls: type,
    path: Path,
    args: argparse.Namespace,
    fixed: Mapping[str, str],
    changeable: Iterable[str],
    train_hint: str,
) -> Any:
    """The configuration a run saved at ``path``, with the test-time fields ``changeable`` that ``args`` sets (not
    ``None``): a test measures the run as it was trained. ``fixed`` (flag -> field): given with another value than
    the run's, a one-line error; a missing file is one naming ``train_hint``, the command that writes it."""
    if not path.is_file():
        raise FileNotFoundError(f"{path.parent}: no {path.name}; train first ({train_hint})")
    cfg = config_cls.load(path)
    for flag, name in fixed.items():
        given, saved = getattr(args, name, None), getattr(cfg, name)
        if given is not None and given != saved:
            raise ValueError(
                f"--{flag} {given}: the run in {path.parent} was trained with --{flag} {saved} "
                f"(a test reads its saved configuration; drop --{flag})"
            )
    changes = {k: getattr(args, k) for k in changeable if getattr(args, k, None) is not None}
    return cfg.replace(**changes) if changes else cfg
