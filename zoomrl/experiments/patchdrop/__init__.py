"""Family ``patchdrop``: Uzkent and Ermon 2020, "Learning When and Where to Zoom With Deep RL".

``python -m zoomrl patchdrop train|test [--dataset digits|cifar10|cifar100] [--stage 1|2|3|4] [flags]``; see
``docs/patchdrop.md``.
"""

import os
import sys

# oneDNN makes the ResNets' CPU updates 2-3x faster under TensorFlow (measured: 1.1-1.6 s against 3.1-3.5 s per
# ResNet-32 update of 128 images on 2 cores); the CLI turns it off by default to quieten TensorFlow, so turn it back
# on while TensorFlow is not loaded yet. Results differ from oneDNN-off runs by float round-off only.
if "tensorflow" not in sys.modules:
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"

from zoomrl.experiments.patchdrop.cli import COMMANDS, build_parser, run  # noqa: E402

__all__ = ["COMMANDS", "build_parser", "run"]
