#!/usr/bin/env bash
# WSClean arguments that might cut imaging time without hurting the image, on the DSA-110-sized
# MS (1.37 GB per column): the loop's own imaging call (1024², Briggs 0, niter 10000, mgain 0.8,
# auto-threshold 3, -j 2; w-stacking, WSClean's default gridder) against the same call plus each
# candidate, one after the other, alternating, each image compared with the default's.
#
#   -use-wgridder            Reinecke's w-gridder instead of w-stacking (30 w-layers here)
#
# (-no-reorder, gridding straight from the MS instead of reordering it per call, cannot be
# tried: WSClean 3.1 refuses it for an MS with several SPWs.)
#
# Usage: bench/wsclean-options.sh [MS] [ROUNDS]   (MS: default bench/results/work/dsa110.ms from
#   bench/solve-vs-casa.sh; it must have CORRECTED_DATA, which is imaged. ROUNDS default 1.)
# Results: bench/results/wsclean-options-<stamp>.md
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MS=${1:-$ROOT/bench/results/work/dsa110.ms}
ROUNDS=${2:-1}
OUT=$ROOT/bench/results
WORK=$OUT/work-wsclean
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RES=$OUT/wsclean-options-$STAMP.md
rm -rf "$WORK"; mkdir -p "$WORK"
[ -d "$MS" ] || { echo "no MS at $MS: run bench/solve-vs-casa.sh first, or give one"; exit 1; }
BASE=(-size 1024 1024 -scale 9.47asec -niter 10000 -mgain 0.8 -auto-threshold 3 -weight briggs 0
      -no-update-model-required -data-column CORRECTED_DATA -j "$(nproc)")
declare -A EXTRA=([default]="" [wgridder]="-use-wgridder")
ORDER=(default wgridder)
{
  echo "# wsclean-options $STAMP"
  echo
  echo "machine: nproc=$(nproc), $(free -g | awk '/Mem:/{print $2}') GiB RAM, load before: $(cut -d' ' -f1-3 /proc/loadavg); $(wsclean --version 2>&1 | grep -m1 -i version)"
  echo "MS: $MS ($(du -sh "$MS" | cut -f1)); common arguments: ${BASE[*]}"
  echo
  echo "| variant | round | wall s | inversion | prediction | deconvolution | major iterations |"
  echo "|---|---|---|---|---|---|---|"
} > "$RES"
for r in $(seq 1 "$ROUNDS"); do
  if (( r % 2 )); then order=("${ORDER[@]}"); else order=($(printf '%s\n' "${ORDER[@]}" | tac)); fi
  for v in "${order[@]}"; do
    d=$WORK/$v-$r; mkdir -p "$d"
    sync
    s=$(date +%s.%N)
    # shellcheck disable=SC2086
    wsclean "${BASE[@]}" ${EXTRA[$v]} -temp-dir "$d" -name "$d/img" "$MS" > "$d/wsclean.log" 2>&1 \
      || { echo "| $v | $r | failed: $(tail -3 "$d/wsclean.log" | tr '\n' ' ') | | | | |" | tee -a "$RES"; continue; }
    e=$(date +%s.%N)
    times=$(grep -m1 '^Inversion:' "$d/wsclean.log" | sed 's/Inversion: \([^,]*\), prediction: \([^,]*\), deconvolution: \(.*\)/\1 | \2 | \3/')
    majors=$(grep -m1 'major iterations were performed' "$d/wsclean.log" | awk '{print $1}')
    printf "| %s | %d | %.1f | %s | %s |\n" "$v" "$r" "$(echo "$e - $s" | bc -l)" "$times" "$majors" | tee -a "$RES"
  done
done
{
  echo
  echo "Images (restored, round 1) against the default's: peak, robust rms, SNR, differences relative to the default's peak and rms:"
  echo
  echo '```'
  /usr/bin/python3 bench/lib/compare_images.py "$WORK/default-1/img-image.fits" "$WORK/wgridder-1/img-image.fits"
  echo '```'
} | tee -a "$RES"
echo "results: $RES"
