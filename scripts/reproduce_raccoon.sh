#!/usr/bin/env bash
# The README's raccoon results: train on raccoon trainval and test on its test split, for both models and both
# hierarchies, with the fast preset (PRESET=baseline for the recipe before tuning). Each run's figures land in runs/raccoon/results_<model>_<scale>/raccoon/.
# Usage: bash scripts/reproduce_raccoon.sh [DATA_ROOT]   (default ../shared/data/raccoon)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/raccoon}
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/raccoon}
PRESET=${PRESET:-fast}  # PRESET=baseline: the recipe of the older table
for scale in 3/4 1/2; do
  tag=${scale/\//_}
  for model in image_zooms pool45_crops; do
    common=(--preset "$PRESET" --data "$DATA" --class-object raccoon --scale-subregion "$scale" --quiet
            --model-dir "$OUT/models_${model}_${tag}" --feature-cache "$OUT/feature_cache")
    if [ ! -f "$OUT/models_${model}_${tag}/raccoon/epoch_12.weights.h5" ]; then
      /usr/bin/time -f "train $model $scale: %e s" $PY ${model}_training.py "${common[@]}" --image-set trainval
    fi
    /usr/bin/time -f "test $model $scale: %e s" $PY ${model}_testing.py "${common[@]}" --image-set test \
      --output-dir "$OUT/results_${model}_${tag}" --bool-draw
  done
done
$PY scripts/compare_runs.py --baselines --output "$OUT" \
  --names "image zooms 3/4" "pool45 crops 3/4" "image zooms 1/2" "pool45 crops 1/2" -- \
  "$OUT"/results_image_zooms_3_4/raccoon/results.json "$OUT"/results_pool45_crops_3_4/raccoon/results.json \
  "$OUT"/results_image_zooms_1_2/raccoon/results.json "$OUT"/results_pool45_crops_1_2/raccoon/results.json
