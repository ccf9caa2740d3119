#!/usr/bin/env bash
# Set up (idempotent), then run the main job on the embedded defaults: train RSMI on MR with
# the MiniLM backbone, evaluate it clean and under attack, print the table.
# Extra arguments go to `rsmi pipeline` (see `rsmi pipeline --help`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
bash "$ROOT/scripts/install-system-deps.sh"   # WordNet for the attack resources (Debian packages)
rsmi pipeline "$@"
