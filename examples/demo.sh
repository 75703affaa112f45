#!/usr/bin/env bash
# `make demo`: the whole transfer pipeline on the bundled model, each command printed as it runs.
#
# models/digits_0to4.keras was trained on scikit-learn's 8x8 digits 0-4. The demo reuses it for
# digits 5-9, which it has never seen: freeze its two lower layers, cache what the reused layers
# compute in one pass, fine-tune a new head while unfreezing the reused layers gradually from the
# top, and evaluate on held-out images.
#
#   bash examples/demo.sh [WORK_DIR]     # default WORK_DIR: demo/ (gitignored)
#
# EPOCHS=N caps the epochs of each stage (the tests use it; the demo runs with the defaults).
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${1:-demo}
MODEL=models/digits_0to4.keras
mkdir -p "$WORK"

if [ -t 2 ]; then BOLD=$'\033[1m' DIM=$'\033[2m' OFF=$'\033[0m'; else BOLD='' DIM='' OFF=''; fi
# Tables on stderr are drawn 80 columns wide when it is not a terminal (a log, a test); give them room.
[ -t 2 ] || export COLUMNS=${COLUMNS:-120}
# say LINE...: a comment block. show CMD [MORE...]: a command as typed, MORE its continuation lines.
say() {
  printf '\n' >&2
  for line in "$@"; do printf '%s# %s%s\n' "$DIM" "$line" "$OFF" >&2; done
}
show() {
  printf '%s$ %s%s\n' "$BOLD" "$1" "$OFF" >&2
  shift
  for line in "$@"; do printf '%s    %s%s\n' "$BOLD" "$line" "$OFF" >&2; done
}
run() { show "$*"; "$@"; }

start=$SECONDS

say "Demo data: scikit-learn's digits 5-9, split 60/20/20 into train/valid/test (labels 0..4)."
run python -m reuse.data.demo "$WORK" --classes 5-9

say "1. Look inside the pretrained model (read without importing TensorFlow)."
run reuse inspect "$MODEL"

say "2. Freeze the lower two layers and, in the same pipe, cache what the reused layers compute." \
    "   freeze prints a one-line JSON record; cache-features reads the model's path from it." \
    "   Four taps in one pass, so that every stage of gradual unfreezing trains from the cache."
show "reuse freeze $MODEL --upto hidden2 -o $WORK/frozen.keras \\" \
     "| reuse cache-features --data $WORK/train.npz --at hidden1,hidden2,hidden3,hidden4 -o $WORK/feats.h5"
reuse freeze "$MODEL" --upto hidden2 -o "$WORK/frozen.keras" \
  | reuse cache-features --data "$WORK/train.npz" --at hidden1,hidden2,hidden3,hidden4 -o "$WORK/feats.h5"
run reuse inspect "$WORK/frozen.keras"

say "3. Fine-tune a new 5-class softmax head with gradual unfreezing. Stage 0 trains the head with" \
    "   every reused layer frozen; each next stage unfreezes two more layers from the top, halves the" \
    "   learning rate, and is kept only if the validation loss improves (--max-unfreeze N stops" \
    "   earlier). Each stage trains from the deepest cached tap below its lowest trainable layer."
run reuse finetune "$WORK/frozen.keras" --features "$WORK/feats.h5" --data "$WORK/train.npz" \
  --val "$WORK/valid.npz" --unfreeze gradual --seed 0 ${EPOCHS:+--epochs "$EPOCHS"} -o "$WORK/tuned.keras"

say "4. Test accuracy on the held-out digits 5-9 (180 images no step above has seen)."
run reuse evaluate "$WORK/tuned.keras" --data "$WORK/test.npz"

say "Done in $((SECONDS - start)) s. In $WORK/: the tuned model, its stage report and training history."
