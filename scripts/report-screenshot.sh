#!/usr/bin/env bash
# Retake docs/images/report.png: the HTML report of RESULTS (default: the test fixture) in
# headless Chromium at 1280x900. Usage: scripts/report-screenshot.sh [RESULTS ...]
# Needs `rsmi` on PATH (source scripts/setup.sh) and Chromium (scripts/install-system-deps.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -gt 0 ] || set -- "$ROOT/tests/fixtures/results"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
rsmi report "$@" --html "$TMP/report.html" --title "${RSMI_REPORT_TITLE:-Robustness results}" >/dev/null
mkdir -p "$TMP/profile" "$ROOT/docs/images"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$TMP/profile" --hide-scrollbars --window-size=1280,900 \
    --screenshot="$ROOT/docs/images/report.png" "file://$TMP/report.html" 2>/dev/null
ls -l "$ROOT/docs/images/report.png"
