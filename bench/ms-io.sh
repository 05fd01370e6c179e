#!/usr/bin/env bash
# Measurement Set column I/O: DATA read and write throughput from Swift (MeasurementSet's chunked
# API, via the selfcal-bench executable) beside python-casacore getcol/getcolnp/putcol on the same
# `medium` MS, in one run, interleaved round by round; medians over ROUNDS rounds.
#
# Warm page cache: the MS (about 124 MB) is written just before and read once by each tool
# before the timed rounds, so every timed pass reads from and writes to the page cache (no
# disk); each measurement opens the table afresh (casacore's own tile cache starts empty).
#
# Usage: bench/ms-io.sh [ROUNDS]   (default 9). Results: bench/results/ms-io-<stamp>.{jsonl,json,md}
# Needs: scripts/install-deps.sh done (casacore, python3-casacore); /usr/bin/python3 with numpy 1.x.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-9}
OUTDIR=bench/results
WORK=$OUTDIR/work
mkdir -p "$WORK"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW=$OUTDIR/ms-io-$STAMP.jsonl
PY=/usr/bin/python3

swift build -c release --product selfcal >/dev/null
swift build -c release --product selfcal-bench >/dev/null
BIN=.build/release
MS=$WORK/medium.ms
rm -rf "$MS" "$MS".truth.json "$MS".catalog.fits
$BIN/selfcal simulate --out "$MS" --preset medium --seed 1 >/dev/null

{
  echo "# ms-io $STAMP"
  echo "# machine: nproc=$(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB RAM"
  echo "# MS: $MS ($(du -sh "$MS" | cut -f1)), $( $PY -c "from casacore.tables import table; t=table('$MS',ack=False); print(t.nrows(), 'rows, DATA cell', t.getcell('DATA',0).shape)")"
  echo "# swift: $(swift --version 2>&1 | head -1)"
  echo "# python-casacore: $($PY -c 'import casacore, numpy; print(casacore.__version__, "numpy", numpy.__version__)')"
} | tee "$RAW"

# Warm-up (not recorded): one pass of each tool.
$BIN/selfcal-bench io "$MS" >/dev/null
$PY bench/lib/ms_io_casacore.py "$MS" DATA 1 >/dev/null

for r in $(seq 1 "$ROUNDS"); do
  if (( r % 2 )); then
    $BIN/selfcal-bench io "$MS" >>"$RAW"
    $PY bench/lib/ms_io_casacore.py "$MS" DATA 1 >>"$RAW"
  else
    $PY bench/lib/ms_io_casacore.py "$MS" DATA 1 >>"$RAW"
    $BIN/selfcal-bench io "$MS" >>"$RAW"
  fi
done

$PY bench/lib/summarize_io.py "$RAW" "$OUTDIR/ms-io-$STAMP.json" | tee "$OUTDIR/ms-io-$STAMP.md"
echo "raw: $RAW"
