#!/usr/bin/env bash
# The main job on the embedded demo data: install, then train and test both models (a few minutes on a CPU).
# Outputs: models_*/seven/ (checkpoints, training_curves.png) and results_*/seven/ (results.json, plots, pictures/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
PY=.venv/bin/python
EPOCHS=${EPOCHS:-3}
for model in image_zooms pool45_crops; do
  echo "== $model: training ($EPOCHS epochs, fast preset) =="
  $PY ${model}_training.py --preset fast --epochs "$EPOCHS"
  echo "== $model: testing =="
  $PY ${model}_testing.py --preset fast --bool-draw
done
echo "done: see results_image_zooms/seven/ and results_pool45_crops/seven/ (results.json, pr_curve.png, pictures/)"
