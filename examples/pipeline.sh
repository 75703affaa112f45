#!/usr/bin/env bash
# The shell pipeline of the SPEC, on the bundled digits model and the demo data:
#
#   reuse inspect base.keras
#   reuse freeze base.keras --upto hidden2 -o frozen.keras \
#     | reuse cache-features --data train.npz -o feats.h5 \
#     | reuse finetune --data train.npz --val valid.npz --head auto -o tuned.keras
#
# Nothing but paths travels between the commands: each prints a one-line JSON record (the model
# it wrote, the frozen layers, the feature cache...) that the next one reads from stdin.
#
#   bash examples/pipeline.sh [WORK_DIR]     # default WORK_DIR: demo/pipeline (gitignored)
#
# EPOCHS=N sets finetune's --epochs (the tests use it to run quickly).
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${1:-demo/pipeline}
mkdir -p "$WORK"
cp models/digits_0to4.keras "$WORK/base.keras"
python -m reuse.data.demo "$WORK" --classes 5-9 >&2
cd "$WORK"
[ -t 2 ] || export COLUMNS=${COLUMNS:-120}

set -x
reuse inspect base.keras
reuse freeze base.keras --upto hidden2 -o frozen.keras \
  | reuse cache-features --data train.npz -o feats.h5 \
  | reuse finetune --data train.npz --val valid.npz --head auto --seed 0 ${EPOCHS:+--epochs "$EPOCHS"} -o tuned.keras \
  | tee tuned.json
# The last record names the tuned model; evaluate reads it from stdin too.
reuse evaluate --data test.npz < tuned.json
