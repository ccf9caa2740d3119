#!/usr/bin/env bash
# Issue 11, candidate cause 2 ("too little randomness"): RSMI trained with
# noise_std ∈ {0.2, 0.4, 0.6} × noise_every ∈ {1, 3} (num_masks 2, seed 0, bf16), each
# evaluated clean on the dev split and attacked with TextFooler (TextDefender preset, no
# cache, attack seed 0) on 100 dev examples. The setting is chosen on dev, never on test.
# Resumable: every step skips what is finished. Usage: bash benchmarks/study_sweep.sh
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PY:-$ROOT/.venv/bin/python}"
RSMI=("$PY" -m rsmi.cli.main)
N="${N:-100}"
log() { echo "[$(date -u +%H:%M:%S)] $*"; }

for ne in 3 1; do
  for sd in 0.2 0.4 0.6; do
    name=rsmi-sd${sd}-ne${ne}-bf16-s0
    [ "$sd" = 0.2 ] && [ "$ne" = 3 ] && name=rsmi-bf16-s0   # the paper's settings
    out=runs/study/mr/models/$name res=results/study/mr/sweep/$name
    mkdir -p "$res"
    if ! grep -q '"finished"' "$out/log.jsonl" 2>/dev/null; then
      resume=(); [ -d "$out/checkpoint" ] && resume=(--resume)
      [ -d "$out" ] && [ ${#resume[@]} -eq 0 ] && resume=(--overwrite)
      log "train $name"
      "${RSMI[@]}" train --method rsmi --data mr --model minilm --epochs 2 --max-length 64 \
        --seed 0 --dtype bfloat16 --noise-std "$sd" --noise-every "$ne" --checkpoint-every 20 \
        --out "$out" "${resume[@]}" || exit 1
    fi
    cp "$out/training_config.json" "$out/log.jsonl" "$res/"
    if [ ! -f "$res/evaluation-dev.json" ]; then
      log "evaluate (dev) $name"
      "${RSMI[@]}" evaluate --model "$out" --data mr --split dev --seed 0 --dtype bfloat16 \
        --out "$res/evaluation-dev.json" > /dev/null || exit 1
    fi
    log "attack (dev) $name"
    "${RSMI[@]}" attack --model "$out" --data mr --split dev --recipe textfooler \
      --preset textdefender --num-examples "$N" --seed 0 --dtype bfloat16 --no-progress \
      --resume --out "$res/textfooler-dev" > /dev/null || exit 1
  done
done
log "sweep done"
