#!/bin/bash
# Tiny runs of the named families (default: all); writes results under OUT.
# Usage (from the root of the tree whose code to use): bash scripts/golden_runs.sh OUT [hierarchical active glimpse patchdrop]
# For a refactor: run it in a worktree of the commit before (`git worktree add --detach ../ref REV`, then `cd ../ref`)
# into REF and in this tree into NEW; every results/detections JSON must agree (timings excepted):
#   python scripts/compare_golden.py REF/<family> NEW/<family>    (prints "0 differences", exit 0)
# Seconds to a few minutes per family on 2 cores; needs ../shared/data/raccoon (RACCOON=... to change it).
set -e
OUT=$1; shift; FAMILIES=${@:-hierarchical active glimpse patchdrop}
PY=${PY:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python}
R=${RACCOON:-../shared/data/raccoon}
for f in $FAMILIES; do
  o=$OUT/$f; rm -rf $o; mkdir -p $o
  case $f in
  hierarchical)
    for m in pool45_crops image_zooms; do
      $PY -m zoomrl hierarchical train --preset tiny --model $m --data $R --class-object raccoon --max-images 6 --model-dir $o/$m --quiet --seed 1 >$o/$m.train.log 2>&1
      $PY -m zoomrl hierarchical test --preset tiny --model $m --data $R --class-object raccoon --max-images 4 --model-dir $o/$m --output-dir $o/$m/results --quiet --seed 1 >$o/$m.test.log 2>&1
    done
    # fast2's options (demonstrations, warm-up, IoU head, weight decay, flips, negatives, validation split, score auto) at tiny size
    F2="--preset fast2 --model pool45_crops --data $R --class-object raccoon --number-of-steps 4 --episode-batch 8 --test-batch 8 --quiet --seed 1"
    H2="import sys; from zoomrl.experiments.hierarchical import config as c; c.PRESETS['fast2'].update(learning_starts=16, replay_size=200); from zoomrl.experiments.cli import main; sys.exit(main(sys.argv[1:]))"
    $PY -c "$H2" hierarchical train $F2 --max-images 8 --epochs 2 --minibatch 16 --bc-updates-per-epoch 10 --hidden-units 64 --model-dir $o/f2 >$o/f2.train.log 2>&1
    $PY -c "$H2" hierarchical test $F2 --max-images 4 --model-dir $o/f2 --output-dir $o/f2/results >$o/f2.test.log 2>&1;;
  active)
    $PY -m zoomrl active train --preset tiny --data $R --class-object raccoon --max-images 4 --model-dir $o/m --quiet --seed 1 >$o/train.log 2>&1
    $PY -m zoomrl active test --preset tiny --data $R --class-object raccoon --max-images 3 --model-dir $o/m --output-dir $o/m/results --quiet >$o/test.log 2>&1;;
  glimpse)
    $PY -m zoomrl glimpse train --preset tiny --model-dir $o/m --quiet --seed 1 >$o/train.log 2>&1
    $PY -m zoomrl glimpse test --model-dir $o/m --output-dir $o/results --quiet >$o/test.log 2>&1
    # fast2 (LSTM core, centre start, unclipped log pi, XLA; regress: conv glimpses, flips and shifts), a few updates
    for t in classify regress; do
      $PY -m zoomrl glimpse train --preset fast2 --task $t --train-size 64 --epochs 2 --baseline-epochs 1 --models ram,random --model-dir $o/f2_$t --quiet --seed 2 >$o/f2_$t.train.log 2>&1
      $PY -m zoomrl glimpse test --task $t --model-dir $o/f2_$t --output-dir $o/f2_$t/results --test-size 24 --mc-samples 2 --quiet >$o/f2_$t.test.log 2>&1
    done;;
  patchdrop)
    $PY -m zoomrl patchdrop train --preset tiny --model-dir $o/m --quiet --seed 1 >$o/train.log 2>&1
    $PY -m zoomrl patchdrop test --model-dir $o/m --output-dir $o/results --quiet --seed 0 >$o/test.log 2>&1
    # fast2's options (masked stage-1 classifier, alpha annealing, graph execution; weight decay switched on) on
    # tiny data and networks: the preset shrunk in process, the same in both trees
    F2="import sys; from zoomrl.experiments.patchdrop import config as c; c.PRESETS['fast2'].update(train_per_digit=1, test_per_digit=1, train_limit=48, test_limit=24, classifier_blocks=1, width=4, classifier_epochs=2, classifier_batch=16, weight_decay=5e-4, pretrain_epochs=2, pretrain_batch=16, sigma_curve=[0.5, 10.0], finetune_epochs=2, finetune_batch=16, two_stream_epochs=1, two_stream_batch=16, eval_batch=24, random_draws=2); from zoomrl.experiments.cli import main; sys.exit(main(sys.argv[1:]))"
    $PY -c "$F2" patchdrop train --preset fast2 --model-dir $o/f2 --quiet --seed 2 >$o/f2.train.log 2>&1
    $PY -c "$F2" patchdrop test --preset fast2 --model-dir $o/f2 --output-dir $o/f2results --quiet --seed 2 >$o/f2.test.log 2>&1;;
  esac
  echo "$f done"
done
