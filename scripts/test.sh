#!/usr/bin/env bash
# The test command: installs what is missing, builds (warnings are errors for our own code),
# and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# The report tests render report.html in headless Chromium: the test command installs it, so it
# passes as written on a fresh machine (outside CI, SELFCAL_WITH_BROWSER=0 SELFCAL_SKIP_BROWSER=1
# skips them with a message).
export SELFCAL_WITH_BROWSER=${SELFCAL_WITH_BROWSER:-1}
scripts/install-deps.sh
swift build 2>&1 | tee /tmp/selfcal-build.log | grep -E "warning:|error:" | grep -v "/.build/checkouts/" && { echo "build has warnings or errors"; exit 1; } || true
swift build >/dev/null
# One test at a time: the suites run real WSClean, dockerd and Slurm jobs on 2 cores, and tests
# that block while a tool runs would otherwise starve the timing of the others.
swift test --no-parallel "$@"
