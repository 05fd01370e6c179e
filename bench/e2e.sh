#!/usr/bin/env bash
# End-to-end at DSA-110 scale: `selfcal simulate --preset dsa110` (96 antennas, 16 SPWs x 48
# channels, 24 integrations: 1.37 GB per data column, corrupted gains, 4 sources), then
# `selfcal run` with a DSA-110-like config (three phase rounds, one amplitude round, every round
# kept so all four run) with the native executor and, when a Docker daemon and the local WSClean
# image can be had, with the container executor on a copy of the same MS; then one round's solve
# and apply through CASA gaincal/applycal on the same MS (bench/setup-casa-venv.sh), so ratios
# are measured side by side in one run.
#
# Reports per stage (seed, each solve, each apply, each WSClean call), selfcal's own share
# (wall time minus time inside WSClean) and selfcal's peak RSS, from each run's report.json.
#
# Usage: bench/e2e.sh            (SKIP_CONTAINER=1, SKIP_CASA=1 to leave a peer out)
# Results: bench/results/e2e-<stamp>.md (and the runs' report.json under bench/results/work-e2e)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/bench/results
WORK=$OUT/work-e2e
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RES=$OUT/e2e-$STAMP.md
mkdir -p "$WORK"
swift build -c release --product selfcal >/dev/null
BIN=$ROOT/.build/release/selfcal
PY=/usr/bin/python3

MS=$WORK/dsa110.ms
rm -rf "$WORK"/*
echo "simulating (untimed)"
$BIN simulate --out "$MS" --preset dsa110 --seed 11 --noise-jy 0.5 >/dev/null

cat > "$WORK/config.json" <<JSON
{
  "refant": "10",
  "max_iterations": 4,
  "phase_solints": ["300s", "120s", "60s"],
  "do_amplitude": true,
  "amp_solint": "inf",
  "min_snr_improvement": 0.0,
  "stop_on_divergence": false,
  "calib_flux_jy": 4.0,
  "imaging": {"imsize": 1024, "niter": 10000, "mgain": 0.8, "auto_threshold": 3},
  "executor": {"kind": "native"}
}
JSON

{
  echo "# e2e $STAMP"
  echo
  echo "machine: nproc=$(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB RAM, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "commit: $(git rev-parse --short HEAD)"
  echo
} > "$RES"

cp -a "$MS" "$WORK/container.ms"
echo "selfcal run, native executor"
/usr/bin/time -f "%e s wall, %M KB max RSS (selfcal process)" -o "$WORK/native.time" \
  $BIN run "$WORK/config.json" --ms "$MS" --output-dir "$WORK/native" --no-report > "$WORK/native.out" 2>&1 || true
$PY bench/lib/summarize_e2e.py "native executor" "$WORK/native" "$WORK/native.time" >> "$RES"

if [ "${SKIP_CONTAINER:-0}" != 1 ] && [ -x scripts/start-dockerd.sh ] && scripts/start-dockerd.sh >/dev/null 2>&1 \
   && scripts/build-wsclean-image.sh >/dev/null 2>&1; then
  echo "selfcal run, container executor"
  $PY - "$WORK" <<'PYCFG'
import json, sys
w = sys.argv[1]
c = json.load(open(f"{w}/config.json"))
c["executor"] = {"kind": "container", "engine": "docker", "mounts": [{"host": w, "container": w}]}
json.dump(c, open(f"{w}/config-container.json", "w"), indent=1)
PYCFG
  /usr/bin/time -f "%e s wall, %M KB max RSS (selfcal process)" -o "$WORK/container.time" \
    $BIN run "$WORK/config-container.json" --ms "$WORK/container.ms" --output-dir "$WORK/container" --no-report > "$WORK/container.out" 2>&1 || true
  $PY bench/lib/summarize_e2e.py "container executor (docker)" "$WORK/container" "$WORK/container.time" >> "$RES"
else
  echo "(container run skipped: no Docker daemon or image here)" | tee -a "$RES"
fi
rm -rf "$WORK/container.ms"

if [ "${SKIP_CASA:-0}" != 1 ] && bench/setup-casa-venv.sh >/dev/null 2>&1; then
  echo "one round through selfcal solve/apply and CASA gaincal/applycal on the same MS"
  CASAPY=$ROOT/.venv-casa/bin/python
  # Each step starts after `sync`: the previous step's writeback is not charged to it.
  t() { local s e; sync; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
  for SOLINT in 60s int; do
    rm -rf "$WORK"/ours-$SOLINT.G "$WORK"/both-$SOLINT.G "$WORK"/casa-$SOLINT.G
    ours_solve=$(t $BIN solve "$MS" --calmode p --solint $SOLINT --refant 10 --table "$WORK/ours-$SOLINT.G")
    ours_apply=$(t $BIN apply "$MS" --table "$WORK/ours-$SOLINT.G")
    ours_both=$(t $BIN solve "$MS" --calmode p --solint $SOLINT --refant 10 --table "$WORK/both-$SOLINT.G" --apply)
    casa_solve=$(t "$CASAPY" bench/lib/casa_peer.py gaincal "$MS" "$WORK/casa-$SOLINT.G" 10 $SOLINT)
    casa_apply=$(t "$CASAPY" bench/lib/casa_peer.py applycal "$MS" "$WORK/casa-$SOLINT.G")
    {
      echo
      echo "## One round's solve + apply (phase, solint $SOLINT) on the same MS"
      echo
      echo "| step | selfcal | CASA | ratio |"
      echo "|---|---|---|---|"
      printf "| solve | %.2f s | %.2f s | %.1fx |\n" "$ours_solve" "$casa_solve" "$(echo "$casa_solve / $ours_solve" | bc -l)"
      printf "| apply | %.2f s | %.2f s | %.1fx |\n" "$ours_apply" "$casa_apply" "$(echo "$casa_apply / $ours_apply" | bc -l)"
      tot_o=$(echo "$ours_solve + $ours_apply" | bc -l); tot_c=$(echo "$casa_solve + $casa_apply" | bc -l)
      printf "| solve + apply, two commands | %.2f s | %.2f s | %.1fx |\n" "$tot_o" "$tot_c" "$(echo "$tot_c / $tot_o" | bc -l)"
      printf "| solve + apply, one command (\`selfcal solve --apply\`, as a loop round does it) | %.2f s | %.2f s | %.1fx |\n" "$ours_both" "$tot_c" "$(echo "$tot_c / $ours_both" | bc -l)"
      echo
      echo "solutions: $($PY bench/lib/compare_tables.py "$WORK/ours-$SOLINT.G" "$WORK/casa-$SOLINT.G" 9 "$MS.truth.json")"
    } >> "$RES"
  done
else
  echo "(CASA comparison skipped)" | tee -a "$RES"
fi
cat "$RES"
echo "results: $RES"
