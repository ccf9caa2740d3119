#!/usr/bin/env bash
# Install the Debian packages rsmi needs beyond Python:
#   wordnet-base         data.* / index.* / *.exc files under /usr/share/wordnet (attack resources)
#   wordnet-sense-index  /usr/share/wordnet/index.sense (NLTK 3.10 raises OSError without it)
#   chromium             headless browser: tests/test_report_browser.py renders the HTML report
#                        (`rsmi report --html`) and checks the DOM; docs/images/report.png
# Idempotent: does nothing when everything is already there. Run as root, non-interactive.
set -euo pipefail

WORDNET_DIR=/usr/share/wordnet
need=()
[ -f "$WORDNET_DIR/data.noun" ] || need+=(wordnet-base)
[ -f "$WORDNET_DIR/index.sense" ] || need+=(wordnet-sense-index)
command -v chromium >/dev/null 2>&1 || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then
    echo "system deps present: WordNet 3.0 in $WORDNET_DIR, $(command -v chromium)"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "error: installing ${need[*]} needs root: run 'sudo $0'" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
echo "installed: ${need[*]}"
