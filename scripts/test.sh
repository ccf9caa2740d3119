#!/usr/bin/env bash
# Set up (idempotent) and run the test suite. Exits non-zero when any test fails and also
# when no test was collected (pytest exit code 5).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh" || { echo "set-up failed" >&2; exit 1; }
cd "$ROOT"
python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests: counting as failure" >&2; exit 1; fi
exit "$rc"
