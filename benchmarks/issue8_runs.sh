#!/usr/bin/env bash
# The measurements of issue 8 (compute dtype, shared prefix), in order, resumable: every step
# skips what is finished. Run from the repository root: bash benchmarks/issue8_runs.sh
# Models go to runs/ (git-ignored); result files to results/ (committed).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PY:-$ROOT/.venv/bin/python}"
RSMI=("$PY" -m rsmi.cli.main)
log() { echo "[$(date -u +%H:%M:%S)] $*"; }

train_eval() {  # method dtype seed name
  local method=$1 dtype=$2 seed=$3 name=$4
  local out=runs/study/mr/models/$name res=results/study/mr/train/$name
  if ! grep -q '"finished"' "$out/log.jsonl" 2>/dev/null; then
    local resume=(); [ -d "$out/checkpoint" ] && resume=(--resume)
    [ -d "$out" ] && [ ${#resume[@]} -eq 0 ] && resume=(--overwrite)
    log "train $name"
    "${RSMI[@]}" train --method "$method" --data mr --model minilm --epochs 2 --max-length 64 \
      --seed "$seed" --dtype "$dtype" --checkpoint-every 20 --out "$out" "${resume[@]}" || return 1
  fi
  mkdir -p "$res"
  cp "$out/training_config.json" "$out/log.jsonl" "$res/"
  if [ ! -f "$res/evaluation.json" ]; then
    log "evaluate $name"
    "${RSMI[@]}" evaluate --model "$out" --data mr --split test --seed 0 --dtype "$dtype" \
      --out "$res/evaluation.json" > /dev/null || return 1
  fi
}

step="${1:-all}"
if [[ $step == all || $step == predict ]]; then
  [ -f results/benchmarks/dtype_predict.json ] || { log "bench_dtype"; "$PY" benchmarks/bench_dtype.py --model runs/study/mr/models/rsmi-fp32-s0 --out results/benchmarks/dtype_predict.json; }
fi
if [[ $step == all || $step == train-speed ]]; then
  [ -f results/benchmarks/dtype_training.json ] || { log "bench_train_dtype"; "$PY" benchmarks/bench_train_dtype.py --methods base,rsmi --rounds 2 --out results/benchmarks/dtype_training.json; }
fi
if [[ $step == all || $step == attack-speed ]]; then
  log "bench_attack fp32 vs bf16"
  "$PY" benchmarks/bench_attack.py --model rsmi=runs/study/mr/models/rsmi-fp32-s0 --recipes textfooler \
    --num-examples 10 --dtypes float32,bfloat16 --interleave 5 --out results/benchmarks/dtype_attack
fi
if [[ $step == all || $step == bf16-models ]]; then
  for s in 0 1 2; do
    train_eval base bfloat16 $s base-bf16-s$s
    train_eval rsmi bfloat16 $s rsmi-bf16-s$s
  done
fi
if [[ $step == all || $step == aua ]]; then
  for dtype in bfloat16 float32; do
    out=results/study/mr/attacks/rsmi-fp32-s0-textfooler-$dtype
    log "attack $out"
    "${RSMI[@]}" attack --model runs/study/mr/models/rsmi-fp32-s0 --data mr --recipe textfooler \
      --preset textdefender --num-examples 100 --seed 0 --dtype $dtype --no-progress --resume --out $out > /dev/null
  done
fi
if [[ $step == all || $step == fp32-models ]]; then
  for s in 0 1 2; do
    train_eval base float32 $s base-fp32-s$s
    train_eval rsmi float32 $s rsmi-fp32-s$s
  done
fi
log "done: $step"
