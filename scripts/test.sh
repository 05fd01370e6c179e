#!/usr/bin/env bash
# The test command: installs what is missing, builds (warnings are errors for our own code),
# and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build 2>&1 | tee /tmp/selfcal-build.log | grep -E "warning:|error:" | grep -v "/.build/checkouts/" && { echo "build has warnings or errors"; exit 1; } || true
swift build >/dev/null
swift test "$@"
