#!/usr/bin/env bash
# `make demo`: the transfer pipeline on the bundled model, each step printed as it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; }
step reuse inspect models/digits_0to4.keras
reuse inspect models/digits_0to4.keras
