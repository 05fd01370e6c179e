#!/usr/bin/env bash
# Gain solve and apply: `selfcal solve`/`selfcal apply` (release build) beside CASA 6.7
# `gaincal`/`applycal` (bench/setup-casa-venv.sh) on the same DSA-110-sized MS, in one run.
#
#  1. `selfcal simulate --preset dsa110` (corrupted gains, 4 sources), `selfcal predict` of the
#     same 4 sources (read from X.ms.truth.json) into MODEL_DATA.
#  2. ROUNDS rounds, the order alternating: `selfcal solve --calmode p --solint int --refant R`
#     and `gaincal(calmode='p', solint='int', gaintype='G', refant=R, minsnr=3)`.
#  3. Solutions compared (phase rms difference after referencing both to R) and each against the
#     true gains.
#  4. ROUNDS rounds of `selfcal apply` (our table) and `applycal` (CASA's table; calwt=False,
#     flagbackup=False), CORRECTED_DATA existing already for both.
#  5. ROUNDS runs of `selfcal solve --apply` (solve and apply in one pass), its table and
#     CORRECTED_DATA compared with those of the separate solve and apply.
#  6. Compatibility: CASA's applycal with OUR table gives the CORRECTED_DATA of our apply (max
#     abs difference), and our apply with CASA's table the CORRECTED_DATA of CASA's applycal.
#
# Every timed step starts after `sync`, so that writeback of the previous step's output (1.4 GB
# of CORRECTED_DATA after an apply) does not stall the next one; this VM's disk is slow enough
# that it otherwise adds seconds at random to whichever tool runs next.
# Wall times are whole processes (selfcal: start to exit; CASA: the task call inside python,
# without casatasks' 2-4 s import, which is reported too). Warm page cache: the MS files are read
# once before the timed rounds (the MS is about 2.8 GB, 4.2 GB with CORRECTED_DATA; 24 GB RAM).
#
# Usage: bench/solve-vs-casa.sh [ROUNDS]   (default 3)
#   REFANT=10 (antenna name)   BASELINE_SELFCAL=path  also times another selfcal binary (e.g. a
#   build of an older commit) in every round, for before/after figures measured side by side.
# Results: bench/results/solve-vs-casa-<stamp>.{jsonl,md}
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROUNDS=${1:-3}
REFANT=${REFANT:-10}
OUTDIR=$ROOT/bench/results
WORK=$OUTDIR/work
mkdir -p "$WORK"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW=$OUTDIR/solve-vs-casa-$STAMP.jsonl
PY=/usr/bin/python3
CASAPY=$ROOT/.venv-casa/bin/python
BIN=$ROOT/.build/release/selfcal
BASE=${BASELINE_SELFCAL:-}

bench/setup-casa-venv.sh >/dev/null 2>&1 || { echo "bench/setup-casa-venv.sh failed"; exit 1; }
swift build -c release --product selfcal >/dev/null

MS=$WORK/dsa110.ms
rm -rf "$MS" "$MS".truth.json "$MS".catalog.fits "$WORK"/*.G "$WORK"/*.npy
echo "simulating and predicting (untimed)"
$BIN simulate --out "$MS" --preset dsa110 --seed 7 >/dev/null
COMPS=$($PY -c "
import json, math
t = json.load(open('$MS.truth.json'))
print(' '.join('--component %.10f,%.10f,%g,%g' % (math.degrees(s['ra']), math.degrees(s['dec']), s['flux'], s['spectral_index']) for s in t['sources']))")
$BIN predict "$MS" $COMPS >/dev/null 2>&1
REFIDX=$($PY -c "
from casacore.tables import table
n = list(table('$MS/ANTENNA', ack=False).getcol('NAME')); print(n.index('$REFANT'))")
NVIS=$($PY -c "
from casacore.tables import table
t = table('$MS', ack=False); s = t.getcell('DATA', 0).shape; print(t.nrows() * s[0] * s[1])")

{
  echo "# solve-vs-casa $STAMP"
  echo "# machine: nproc=$(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB RAM, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# MS: $MS ($(du -sh "$MS" | cut -f1)), $NVIS visibilities; refant $REFANT (index $REFIDX)"
  echo "# selfcal: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Sources Package.swift || echo '+dirty'); baseline: ${BASE:-none}"
  echo "# casa: $($CASAPY -c 'import casatools; print(casatools.version_string())' 2>/dev/null | tail -1)"
} | tee "$RAW"

# Runs a command, appends {"tool", "op", "wall_s", ...extra JSON from its stdout} to RAW.
timed() {
  local tool=$1 op=$2; shift 2
  local t0 t1 out rc=0
  sync  # the previous step's writes go to disk before the clock starts, not during this step
  t0=$(date +%s.%N)
  out=$("$@" 2>"$WORK/last.stderr") || rc=$?
  t1=$(date +%s.%N)
  if [ $rc != 0 ]; then echo "FAILED ($rc): $*"; tail -5 "$WORK/last.stderr"; exit 1; fi
  local extra
  extra=$(echo "$out" | grep '^{' | tail -1 || true)
  $PY -c "
import json, sys
d = json.loads(sys.argv[4]) if sys.argv[4] else {}
d.update(tool=sys.argv[1], op=sys.argv[2], wall_s=float(sys.argv[3]), nvis=$NVIS)
print(json.dumps(d))" "$tool" "$op" "$(echo "$t1 - $t0" | bc -l)" "$extra" | tee -a "$RAW"
}

echo "warming the page cache"
cat "$MS"/table.* >/dev/null

cd "$WORK"  # CASA writes its logs beside the venv; keep any stray files here
for r in $(seq 1 "$ROUNDS"); do
  rm -rf ours.G casa.G base.G
  solve_ours() { timed selfcal solve "$BIN" solve "$MS" --calmode p --solint int --refant "$REFANT" --table ours.G; }
  solve_casa() { timed casa gaincal "$CASAPY" "$ROOT/bench/lib/casa_peer.py" gaincal "$MS" casa.G "$REFANT"; }
  if (( r % 2 )); then solve_ours; solve_casa; else solve_casa; solve_ours; fi
  if [ -n "$BASE" ]; then timed selfcal-baseline solve "$BASE" solve "$MS" --calmode p --solint int --refant "$REFANT" --table base.G; fi
done

echo "comparing solutions"
echo "{\"tool\": \"compare\", \"op\": \"tables\", \"result\": $($PY "$ROOT/bench/lib/compare_tables.py" ours.G casa.G "$REFIDX" "$MS.truth.json")}" | tee -a "$RAW"

# CORRECTED_DATA exists before any timed apply (our apply creates it as a copy of DATA).
"$BIN" apply "$MS" --table ours.G >/dev/null 2>&1
for r in $(seq 1 "$ROUNDS"); do
  apply_ours() { timed selfcal apply "$BIN" apply "$MS" --table ours.G; }
  apply_casa() { timed casa applycal "$CASAPY" "$ROOT/bench/lib/casa_peer.py" applycal "$MS" casa.G; }
  if (( r % 2 )); then apply_ours; apply_casa; else apply_casa; apply_ours; fi
  if [ -n "$BASE" ]; then timed selfcal-baseline apply "$BASE" apply "$MS" --table ours.G; fi
done

# Solve and apply in one command (`selfcal solve --apply`: CORRECTED_DATA written in the solving
# pass), against the same run's gaincal + applycal medians.
for r in $(seq 1 "$ROUNDS"); do
  rm -rf both.G
  timed selfcal solve+apply "$BIN" solve "$MS" --calmode p --solint int --refant "$REFANT" --table both.G --apply
done
echo "{\"tool\": \"compare\", \"op\": \"solve_apply_table_vs_solve_table\", \"result\": $($PY "$ROOT/bench/lib/compare_tables.py" both.G ours.G "$REFIDX")}" | tee -a "$RAW"
$PY "$ROOT/bench/lib/corrected.py" dump "$MS" fused-apply.npy >/dev/null
"$BIN" apply "$MS" --table ours.G >/dev/null 2>&1
echo "{\"tool\": \"compare\", \"op\": \"solve_apply_corrected_vs_solve_then_apply\", \"result\": $($PY "$ROOT/bench/lib/corrected.py" compare "$MS" fused-apply.npy)}" | tee -a "$RAW"

echo "compatibility: CASA applycal with our table vs our apply"
"$BIN" apply "$MS" --table ours.G >/dev/null 2>&1
$PY "$ROOT/bench/lib/corrected.py" dump "$MS" ours-apply.npy >/dev/null
"$CASAPY" "$ROOT/bench/lib/casa_peer.py" applycal "$MS" ours.G >/dev/null 2>&1
echo "{\"tool\": \"compare\", \"op\": \"casa_applycal_our_table_vs_our_apply\", \"result\": $($PY "$ROOT/bench/lib/corrected.py" compare "$MS" ours-apply.npy)}" | tee -a "$RAW"
echo "compatibility: our apply with CASA's table vs CASA applycal"
"$CASAPY" "$ROOT/bench/lib/casa_peer.py" applycal "$MS" casa.G >/dev/null 2>&1
$PY "$ROOT/bench/lib/corrected.py" dump "$MS" casa-apply.npy >/dev/null
"$BIN" apply "$MS" --table casa.G >/dev/null 2>&1
echo "{\"tool\": \"compare\", \"op\": \"our_apply_casa_table_vs_casa_applycal\", \"result\": $($PY "$ROOT/bench/lib/corrected.py" compare "$MS" casa-apply.npy)}" | tee -a "$RAW"
rm -f ./*.npy
cd "$ROOT"

echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW"
$PY bench/lib/summarize_solve.py "$RAW" | tee "$OUTDIR/solve-vs-casa-$STAMP.md"
echo "raw: $RAW"
