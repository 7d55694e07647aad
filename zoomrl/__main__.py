"""``python -m zoomrl FAMILY train|test [flags]``: see :mod:`zoomrl.experiments.cli`."""

import sys

from zoomrl.experiments.cli import main

sys.exit(main())
