#!/usr/bin/env bash
# The README's ablation: the baseline preset's recipe (the fast preset before tuning), then DQN options added, each trained on DATA's
# trainval split and tested on its test split (one seed each). Prints a table (AP, windows per object, minutes).
# Usage: MODEL=pool45_crops SCALE=3/4 bash scripts/ablation.sh [DATA_ROOT] [CLASS]
#        (defaults: image_zooms, 3/4, ../shared/data/raccoon, raccoon; RECIPES="name ..." picks a subset)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/raccoon}
CLASS=${2:-raccoon}
MODEL=${MODEL:-image_zooms}
SCALE=${SCALE:-3/4}
SEED=${SEED:-0}
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/ablation/${MODEL}_${SCALE/\//_}_${CLASS}}
declare -A RECIPE=(
  [0_fast]=""
  [1_nstep3]="--n-step 3"
  [2_demos]="--n-step 3 --demo-ratio 0.25"
  [3_bc]="--n-step 3 --demo-ratio 0.25 --bc-epochs 1"
  [4_dueling]="--n-step 3 --demo-ratio 0.25 --bc-epochs 1 --dueling"
  [5_no_force]="--n-step 3 --demo-ratio 0.25 --bc-epochs 1 --no-force-trigger"
  [6_scale]="--n-step 3 --demo-ratio 0.25 --bc-epochs 1 --descriptor-scale 0.05"
  [7_iou]="--n-step 3 --demo-ratio 0.25 --bc-epochs 1 --descriptor-scale 0.05 --iou-weight 1"
)
mkdir -p "$OUT"
NAMES=${RECIPES:-$(printf '%s\n' "${!RECIPE[@]}" | sort)}
for name in $NAMES; do
  common=(--model "$MODEL" --preset baseline --data "$DATA" --class-object "$CLASS" --scale-subregion "$SCALE"
          --seed "$SEED" --quiet --model-dir "$OUT/$name/models" --feature-cache "$OUT/../feature_cache")
  if [ ! -f "$OUT/$name/models/$CLASS/latest.json" ]; then
    start=$(date +%s)
    # shellcheck disable=SC2086
    $PY -m zoomrl hierarchical train "${common[@]}" --image-set trainval ${RECIPE[$name]} | tee "$OUT/$name.train.log"
    echo $(( $(date +%s) - start )) > "$OUT/$name/train_seconds"
  fi
  if [ ! -f "$OUT/$name/results/$CLASS/results.json" ]; then
    $PY -m zoomrl hierarchical test "${common[@]}" --image-set test --output-dir "$OUT/$name/results" \
      | tee "$OUT/$name.test.log"
  fi
done
$PY scripts/ablation_table.py "$OUT" "$CLASS"
