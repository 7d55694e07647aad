#!/usr/bin/env bash
# The main job on the embedded demo data: install, then train and test both feature models (minutes on a CPU)
# and print one table: each agent's AP on the demo test split beside the random agent's and the oracle's.
# Outputs: models_*/seven/ (checkpoints, training_curves.png), results_*/seven/ (results.json, plots, pictures/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
.venv/bin/python -m zoomrl hierarchical demo ${EPOCHS:+--epochs "$EPOCHS"} "$@"
