#!/usr/bin/env bash
# The classic transfer-learning exercise (Geron, Hands-On Machine Learning, ch. 11): reuse the
# hidden layers of models/mnist_0to4.keras (trained on MNIST digits 0-4) to learn digits 5-9 from
# only 100 training images per digit, and compare six ways of doing it on the full MNIST test set
# of digits 5-9 (the 4,861 t10k images).
#
#   bash examples/mnist_transfer.sh MNIST_DIR [WORK_DIR]    # default WORK_DIR: demo/mnist (gitignored)
#
# MNIST_DIR holds the four IDX files (train-images-idx3-ubyte.gz, ...). Data (see mnist_helpers.py):
# train = 100 images per digit 5-9 drawn from training images 5,000-59,999; valid = 30 per digit
# from the first 5,000 (the base model's own validation images); test = t10k, digits 5-9, all.
#
# Every variant trains with Adam (lr 1e-3, batch 32) and early stopping on the validation loss
# (patience 10, best weights kept), except gradual unfreezing, which runs with its defaults
# (--unfreeze gradual and nothing else: 10 epochs per stage at most, patience 3, lr halved each stage).
#
#   1 frozen, no cache      hidden1-5 frozen, new softmax head; every epoch runs the frozen layers
#   2 frozen, cached        the same, but hidden1-5 run once (cache-features) and the head trains from the cache
#   3 reuse 4 layers        --cut hidden4 drops hidden5; hidden1-4 frozen and cached
#   4 unfreeze top two      reuse hidden1-4, freeze only hidden1-2 (cached at hidden2): hidden3-4 train with the head
#   5 gradual unfreezing    head first, then unfreeze hidden5-4, hidden3-2, hidden1 (two per stage) while validation improves
#   6 from scratch          the same architecture re-initialized (He normal), every layer trained
#
# EPOCHS=N caps the epochs of every variant (tests use it to run quickly; the published table
# uses the defaults above).
set -euo pipefail

if [ $# -lt 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 MNIST_DIR [WORK_DIR]   (MNIST_DIR: a folder with the four MNIST IDX files)" >&2
  exit 2
fi
if ! compgen -G "$1/train-images-idx3-ubyte*" > /dev/null; then
  echo "Error: $1 holds no MNIST files (train-images-idx3-ubyte[.gz], ...) — pass the folder of the four IDX files" >&2
  exit 2
fi
MNIST=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
WORK=${2:-demo/mnist}
case $WORK in *[[:space:]]*) echo "$0: WORK_DIR must not contain spaces: $WORK" >&2; exit 2;; esac
BASE=models/mnist_0to4.keras
mkdir -p "$WORK"
rm -f "$WORK"/*.finetune.json "$WORK"/*.evaluate.json "$WORK"/*.seconds

EPOCHS_MAIN=${EPOCHS:-200}
TRAIN=(--data "$WORK/train.npz" --val "$WORK/valid.npz" --seed 0)
FIXED=(--epochs "$EPOCHS_MAIN" --early-stopping 10)
GRADUAL=(--unfreeze gradual)
[ -n "${EPOCHS:-}" ] && GRADUAL+=(--epochs "$EPOCHS")
TEST=(--data "$MNIST" --split test --classes 5-9)

# Tables on stderr are drawn 80 columns wide when it is not a terminal; give them room.
[ -t 2 ] || export COLUMNS=${COLUMNS:-120}
[ -t 2 ] && { BOLD=$'\033[1m' OFF=$'\033[0m'; } || { BOLD='' OFF=''; }
show() { printf '\n%s$ %s%s\n' "$BOLD" "$*" "$OFF" >&2; }

# variant NAME COMMAND: run COMMAND (a pipeline ending in `reuse finetune`) in bash, keep the
# finetune record, evaluate the tuned model on the test set, and time the whole variant.
variant() {
  local name=$1 pipeline=$2 start=$EPOCHREALTIME
  show "$pipeline"
  eval "$pipeline" > "$WORK/$name.finetune.json"
  python -c "print(round($EPOCHREALTIME - $start, 1))" > "$WORK/$name.seconds"
  show "reuse evaluate $WORK/$name.keras ${TEST[*]}"
  reuse evaluate "$WORK/$name.keras" "${TEST[@]}" --json > "$WORK/$name.evaluate.json"
}

show "python examples/mnist_helpers.py prepare $MNIST $WORK"
python examples/mnist_helpers.py prepare "$MNIST" "$WORK"

variant 1-frozen "reuse freeze $BASE --upto hidden5 -o $WORK/frozen5.keras \\
  | reuse finetune ${TRAIN[*]} ${FIXED[*]} -o $WORK/1-frozen.keras"

variant 2-frozen-cached "reuse freeze $BASE --upto hidden5 -o $WORK/frozen5.keras \\
  | reuse cache-features --data $WORK/train.npz -o $WORK/feats5.h5 \\
  | reuse finetune ${TRAIN[*]} ${FIXED[*]} -o $WORK/2-frozen-cached.keras"

variant 3-reuse-4-layers "reuse freeze $BASE --upto hidden4 -o $WORK/frozen4.keras \\
  | reuse cache-features --data $WORK/train.npz -o $WORK/feats4.h5 \\
  | reuse finetune --cut hidden4 ${TRAIN[*]} ${FIXED[*]} -o $WORK/3-reuse-4-layers.keras"

variant 4-unfreeze-top-two "reuse freeze $BASE --upto hidden2 -o $WORK/frozen2.keras \\
  | reuse cache-features --data $WORK/train.npz -o $WORK/feats2.h5 \\
  | reuse finetune --cut hidden4 --unfreeze none ${TRAIN[*]} ${FIXED[*]} -o $WORK/4-unfreeze-top-two.keras"

variant 5-gradual "reuse cache-features $BASE --data $WORK/train.npz --at hidden1,hidden2,hidden3,hidden4,hidden5 -o $WORK/feats-all.h5 \\
  | reuse finetune ${TRAIN[*]} ${GRADUAL[*]} -o $WORK/5-gradual.keras"

variant 6-from-scratch "reuse finetune $WORK/scratch.keras --unfreeze all ${TRAIN[*]} ${FIXED[*]} -o $WORK/6-from-scratch.keras"

printf '\nDigits 5-9, 100 training images per digit; test: all %s t10k images of digits 5-9.\n' \
  "$(python -c "import json; print(json.load(open('$WORK/1-frozen.evaluate.json'))['metrics']['rows'])")"
printf 'train s: time training (all stages); wall s: the whole variant (TensorFlow start-up, freeze, cache, training).\n\n'
python examples/mnist_helpers.py table "$WORK"
