"""TensorBoard scalars through whichever writer the installed backend offers (TensorFlow or PyTorch)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path


class ScalarLogger:
    """Writes scalars under ``log_dir``; says in one line, once, when no TensorBoard writer is installed."""

    def __init__(self, log_dir: Path, log: Callable[[str], None] = print) -> None:
        self._tf = None
        self._torch = None
        log_dir = Path(log_dir)
        try:
            import tensorflow as tf  # noqa: PLC0415
            from tensorboard.summary import v2  # noqa: F401, PLC0415 - tf.summary.scalar needs the package

            self._tf = tf
            self._writer = tf.summary.create_file_writer(str(log_dir))
            return
        except ImportError:
            pass
        try:
            from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415

            self._torch = SummaryWriter(str(log_dir))
        except Exception:  # noqa: BLE001 - torch without tensorboard raises ImportError or others
            log("tensorboard: no writer installed (TensorFlow or torch+tensorboard); scalars are in history only")

    def scalars(self, step: int, values: dict[str, float]) -> None:
        clean = {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and math.isfinite(v)}
        if self._tf is not None:
            with self._writer.as_default():
                for k, v in clean.items():
                    self._tf.summary.scalar(k, v, step=step)
            self._writer.flush()
        elif self._torch is not None:
            for k, v in clean.items():
                self._torch.add_scalar(k, v, step)
            self._torch.flush()

    def close(self) -> None:
        if self._tf is not None:
            self._writer.close()
        elif self._torch is not None:
            self._torch.close()
