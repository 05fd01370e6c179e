#!/usr/bin/env bash
# The main job on a sample it makes itself: installs what is missing, builds selfcal, simulates a
# small Measurement Set with corrupted antenna gains, and self-calibrates it with `selfcal run`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release 2>&1 | tail -1
bin=.build/release/selfcal
rm -rf sample
mkdir -p sample
$bin simulate --out sample/sample.ms --preset small --seed 1 --noise-jy 0.05
$bin run configs/calibrator-only.json
echo "demo: outputs in sample/selfcal (report.json, round-NN/, final.G, selfcal.log)"
