#!/usr/bin/env bash
# The user path of issue 28, run for real: a user's own 3-class CSV -> train -> evaluate ->
# predict/certify -> attack -> report -> serve (curl) -> stop, every command and its real output
# written to OUT/transcript.md (and OUT/logs/NN-name.txt).
#
#   bash benchmarks/user_path.sh [OUT]          # OUT default: results/user-path
#
# The CSVs (OUT/train.csv, OUT/test.csv) are made from the built-in `tweets` dataset (3-class
# sentiment), seeded and stratified, as a user's own file would be: columns `feedback,stars`,
# labels as words, the test file without a split column. The model is written to MODEL_DIR
# (default runs/user-path/model, git-ignored): weights never go under results/.
# Environment: PYTHON (default: .venv/bin/python, else python3), MODEL_DIR, PORT (default: a
# free port), EPOCHS (2), MAX_LENGTH (48), NUM_EXAMPLES (20, attacked test rows), ONLY_SERVE=1
# (rerun only the serve part against the model and transcript already there: the transcript is
# cut at its "## serve" heading and the new serve part appended, with its own date).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-results/user-path}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
if [[ -n "${PYTHON:-}" ]]; then PY="$PYTHON"
elif [[ -x "$ROOT/.venv/bin/python" ]]; then PY="$ROOT/.venv/bin/python"
else PY=python3; fi
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
MODEL_DIR="${MODEL_DIR:-$ROOT/runs/user-path/model}"
EPOCHS="${EPOCHS:-2}"
MAX_LENGTH="${MAX_LENGTH:-48}"
NUM_EXAMPLES="${NUM_EXAMPLES:-20}"
mkdir -p "$(dirname "$MODEL_DIR")"
cd "$OUT"
# the model directory as the commands name it (relative to OUT when possible)
M="$("$PY" -c 'import os,sys; print(os.path.relpath(sys.argv[1]))' "$MODEL_DIR")"

rsmi() { "$PY" -m rsmi.cli.main "$@"; }
TRANSCRIPT="$OUT/transcript.md"
mkdir -p logs
# two sentences of one's own (predict, certify, the server)
S1="@united lost my bag again, third time this month. never flying with you again"
S2="thanks @SouthwestAir, the crew was lovely and we landed early!"
STEP=0
if [[ "${ONLY_SERVE:-0}" == 1 ]]; then
  [[ -f "$TRANSCRIPT" ]] && grep -q '^## serve' "$TRANSCRIPT" \
    || { echo "user_path.sh: ONLY_SERVE=1 needs a transcript with a serve part in $OUT" >&2; exit 2; }
  STEP=$(grep -c '^## [0-9]*\. ' <(sed '/^## serve/,$d' "$TRANSCRIPT"))
  sed -i '/^## serve/,$d' "$TRANSCRIPT"
  rm -f logs/serve.log logs/*-curl-*.txt
else
rm -f logs/*.txt

{
  echo "# The user path, run for real"
  echo
  echo "Written by \`bash benchmarks/user_path.sh\` (do not edit by hand)."
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- git: $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- src || echo ' (src modified)')"
  echo "- machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, no GPU; $(uptime | sed 's/.*load average/load average/')"
  echo "- python: $("$PY" -c 'import platform,torch; print(platform.python_version(), "torch", torch.__version__)')"
  echo "- working directory: the output directory (\`$(basename "$OUT")/\`); \`rsmi\` is \`python -m rsmi.cli.main\`"
  echo
} > "$TRANSCRIPT"
fi

# step NAME SHOWN-COMMAND...: run the command (a shell string), log its stdout+stderr, append
# both to the transcript; a failure is recorded and stops the script.
step() {
  local name="$1"; shift
  local cmd="$*"
  STEP=$((STEP + 1))
  local log
  log="logs/$(printf '%02d' "$STEP")-$name.txt"
  local t0 t1 rc=0
  t0=$(date +%s)
  bash -c "set -o pipefail; rsmi() { \"$PY\" -m rsmi.cli.main \"\$@\"; }; $cmd" > "$log" 2>&1 || rc=$?
  t1=$(date +%s)
  {
    echo "## $STEP. $name ($((t1 - t0)) s, exit $rc)"
    echo
    echo '```console'
    echo "\$ $cmd"
    # progress bars redraw with \r: keep each bar's last state
    sed 's/.*\r//' "$log"
    echo '```'
    echo
  } >> "$TRANSCRIPT"
  echo "[$STEP $name: exit $rc, $((t1 - t0)) s]" >&2
  if [[ $rc -ne 0 ]]; then
    echo "user_path.sh: step $name failed (exit $rc), see $log" >&2
    exit "$rc"
  fi
}

if [[ "${ONLY_SERVE:-0}" != 1 ]]; then
# 1. The user's own CSVs.
step make-csv "$(printf '%q ' "$PY") - <<'EOF'
import csv, numpy as np
from rsmi.data import load_dataset
d = load_dataset('tweets')
rng = np.random.default_rng(0)
def sample(split, total, path):
    rows = d.split(split)
    by_label = {}
    for e in rows:
        by_label.setdefault(e.label, []).append(e)
    out = []
    for label, exs in sorted(by_label.items()):    # stratified: each class in its share
        n = round(total * len(exs) / len(rows))
        out += [exs[i] for i in rng.choice(len(exs), size=n, replace=False)]
    rng.shuffle(out)
    with open(path, 'w', newline='', encoding='utf-8') as f:
        w = csv.writer(f)
        w.writerow(['feedback', 'stars'])
        for e in out:
            w.writerow([e.text, d.label_names[e.label]])
    print(path, len(out), 'rows', {d.label_names[k]: sum(e.label == k for e in out) for k in sorted(by_label)})
sample('train', 1200, 'train.csv')
sample('test', 150, 'test.csv')
EOF
head -4 train.csv"

# 2. Train (the model directory is outside results/: weights are never committed).
step train "rsmi train --method rsmi --model minilm --data train.csv --text-column feedback --label-column stars --epochs $EPOCHS --max-length $MAX_LENGTH --batch-size 16 --dtype auto --out $M --overwrite"

# 3. Evaluate the separate test file, whole (no column flags: the model remembers them).
step evaluate "rsmi evaluate --model $M --data test.csv --split all --out evaluation.json --predictions predictions.jsonl --overwrite"

# 4. Predict and certify two sentences of one's own.
step predict "rsmi predict --model $M $(printf '%q ' "$S1" "$S2")"
step certify "rsmi certify --model $M $(printf '%q ' "$S1" "$S2")"

# 5. Attack the test file.
step attack "rsmi attack --model $M --data test.csv --split all --recipe textfooler --preset textdefender --num-examples $NUM_EXAMPLES --out attack --overwrite --no-progress"

# 6. Report: terminal table, Markdown and HTML.
step report "rsmi report evaluation.json attack --markdown report.md --html report.html --overwrite"
fi

# 7. Serve, talk to it with curl on 127.0.0.1, stop it with SIGTERM.
PORT="${PORT:-$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
# the server itself is the background process (not a shell function's subshell), so that
# SIGTERM reaches it
"$PY" -m rsmi.cli.main serve --model "$M" --port "$PORT" > logs/serve.log 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 240); do
  curl -sf "http://127.0.0.1:$PORT/health" > /dev/null 2>&1 && break
  kill -0 "$SERVER" 2>/dev/null || { cat logs/serve.log >&2; exit 1; }
  sleep 0.5
done
{
  echo "## serve"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(uptime | sed 's/.*load average/load average/')"
  echo
  echo '```console'
  echo "\$ rsmi serve --model $M --port $PORT &"
  echo '```'
  echo
} >> "$TRANSCRIPT"
URL="http://127.0.0.1:$PORT"
step curl-predict "curl -sS $URL/predict -H 'content-type: application/json' -d '{\"texts\": [\"$S1\", \"$S2\"], \"seed\": 0}'; echo"
step curl-metadata "curl -sS $URL/metadata | python3 -m json.tool"
step curl-certify "curl -sS $URL/certify -H 'content-type: application/json' -d '{\"texts\": [\"$S2\"], \"n0\": 100, \"n\": 1000}'; echo"
step curl-health "curl -sS $URL/health; echo"
kill -TERM "$SERVER"
rc=0; wait "$SERVER" || rc=$?
trap - EXIT
{
  echo "## stop the server (SIGTERM; exit $rc); its log"
  echo
  echo '```console'
  echo "\$ kill -TERM \$SERVER"
  cat logs/serve.log
  echo '```'
  echo
  echo "Finished $(date -u '+%Y-%m-%d %H:%M UTC'); $(uptime | sed 's/.*load average/load average/')."
} >> "$TRANSCRIPT"
echo "user_path.sh: done, $TRANSCRIPT" >&2
