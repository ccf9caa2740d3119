#!/usr/bin/env bash
# Set up (idempotent), install the system packages the tests need (WordNet, Chromium for the
# HTML report's browser test), and run the test suite. Exits non-zero when any test fails and
# also when no test was collected (pytest exit code 5).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh" || { echo "set-up failed" >&2; exit 1; }
cd "$ROOT"
bash "$ROOT/scripts/install-system-deps.sh" || { echo "installing system deps failed" >&2; exit 1; }
# Chromium is installed now: the browser test must run, never skip.
export RSMI_REQUIRE_BROWSER=1
run_pytest() {
    python -m pytest "$@"
    local rc=$?
    if [ "$rc" -eq 5 ]; then echo "pytest collected no tests: counting as failure" >&2; return 1; fi
    return "$rc"
}
run_pytest "$@"
