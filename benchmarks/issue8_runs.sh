#!/usr/bin/env bash
# Issue 8's measurements (compute dtype and shared prefix), in order, each resumable/skipped
# when done. Needs the seed-0 models of benchmarks/study.yaml (bfloat16) and
# benchmarks/study_fp32.yaml (float32). Run from the repository root:
#   bash benchmarks/issue8_runs.sh [predict|train-speed|attack-speed|aua]
set -uo pipefail
ROOT="${RSMI_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"  # RSMI_ROOT: where outputs go
cd "$ROOT"
PY="${PY:-$ROOT/.venv/bin/python}"
log() { echo "[$(date -u +%H:%M:%S)] $*"; }
FP32=runs/dtype-fp32/mr/rsmi-paper/seed-0    # RSMI, paper settings, trained in float32
BF16=runs/study/mr/rsmi-paper/seed-0         # the same, trained in bfloat16
step="${1:-all}"
if [[ $step == all || $step == predict ]] && [ ! -f results/benchmarks/dtype_predict.json ]; then
  log "bench_dtype"
  "$PY" benchmarks/bench_dtype.py --model "$FP32" --out results/benchmarks/dtype_predict.json
fi
if [[ $step == all || $step == train-speed ]] && [ ! -f results/benchmarks/dtype_training.json ]; then
  log "bench_train_dtype"
  "$PY" benchmarks/bench_train_dtype.py --methods base,rsmi --rounds 2 \
    --out results/benchmarks/dtype_training.json
fi
if [[ $step == all || $step == attack-speed ]] && [ ! -f results/benchmarks/dtype_attack/bench_attack.json ]; then
  log "bench_attack fp32 vs bf16"
  "$PY" benchmarks/bench_attack.py --model rsmi="$FP32" --recipes textfooler --num-examples 10 \
    --dtypes float32,bfloat16 --interleave 5 --out results/benchmarks/dtype_attack
fi
if [[ $step == all || $step == aua ]]; then
  # RSMI's AUA under TextFooler with bf16 vs fp32 inference: the bf16-trained model, the same
  # 100 test examples (the study's sample and word cut), attack seed 0, no cache.
  for dtype in bfloat16 float32; do
    log "aua $dtype"
    "$PY" -m rsmi.cli.main attack --model "$BF16" --data mr --split test --recipe textfooler \
      --preset textdefender --num-examples 100 --sample-seed 0 --seeds 0 --max-length 64 \
      --cut-to-max-length --dtype "$dtype" --no-progress --resume \
      --out "results/benchmarks/dtype_aua/rsmi-paper-textfooler-$dtype" > /dev/null
  done
fi
log "done: $step"
