#!/usr/bin/env bash
# Sky-model benchmarks: native predict vs `wsclean -predict` of the same components into the
# same dsa110 MS (100 and 1000 components), and catalog selection from a 1.8-million-row catalog
# in the NVSS layout. Builds release first. Prints a Markdown report to stdout.
#
#   bench/sky-models.sh [WORK_DIR]         (default /tmp/selfcal-bench-sky; needs ~5 GB)
#   SELFCAL_BENCH_CHANNELS=N, SELFCAL_BENCH_INTEGRATIONS=N shrink the MS (default: full dsa110)
#   SELFCAL_BENCH_SWIFTFLAGS="-Xswiftc -target-cpu -Xswiftc haswell" builds for AVX2/FMA too
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=${1:-/tmp/selfcal-bench-sky}
mkdir -p "$work"
scratch="$work/build"
# shellcheck disable=SC2086
swift build -c release --scratch-path "$scratch" ${SELFCAL_BENCH_SWIFTFLAGS:-} >"$work/build.log" 2>&1 || { tail -30 "$work/build.log"; exit 1; }
bin="$scratch/release/selfcal"
export SELFCAL_LOG_LEVEL=warning

ms="$work/dsa.ms"
simargs=(--preset dsa110 --noise-jy 0.01)
[ -n "${SELFCAL_BENCH_CHANNELS:-}" ] && simargs+=(--channels "$SELFCAL_BENCH_CHANNELS")
[ -n "${SELFCAL_BENCH_INTEGRATIONS:-}" ] && simargs+=(--integrations "$SELFCAL_BENCH_INTEGRATIONS")
if [ ! -d "$ms" ]; then "$bin" simulate --out "$ms" "${simargs[@]}" >"$work/simulate.log"; fi
for n in 100 1000; do
  /usr/bin/python3 bench/make_components.py "$n" 202.7845 30.5092 2.5 "$work/c$n.txt"
done

timed() {  # label, command...: runs it, prints "label | wall | user+sys | its own summary line"
  local label=$1; shift
  local t0 t1 out
  t0=$(date +%s.%N)
  out=$(/usr/bin/time -f "TIME %e %U %S" "$@" 2>&1) || { echo "$out" | tail -20 >&2; return 1; }
  t1=$(date +%s.%N)
  local cpu
  cpu=$(echo "$out" | awk '/^TIME/ {printf "%.2f", $3 + $4}')
  printf '| %s | %.2f | %s | %s |\n' "$label" "$(echo "$t1 - $t0" | bc)" "$cpu" "$(echo "$out" | grep -E '^predicted' | sed 's/|/\//g')"
}

echo "## Sky models"
echo
echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(awk '/MHz/ {print $4; exit}' /proc/cpuinfo) MHz), load average before: $(cut -d' ' -f1-3 /proc/loadavg)."
echo "MS: $(du -shL "$ms" | cut -f1) — $(head -1 "$work/simulate.log" 2>/dev/null || echo "reused")"
echo
echo "### Predict (MODEL_DATA, whole MS, I/O included)"
echo
echo "| run | wall s | CPU s | selfcal's summary |"
echo "|---|---|---|---|"
# Warm the page cache and create MODEL_DATA once, so every run writes an existing column.
"$bin" predict "$ms" --component 202.7845,30.5092,1 >/dev/null
for n in 100 1000; do
  cat="$work/c$n.txt"
  common=(--catalog "$cat" --min-mjy 0 --radius-deg 5 --max-components 100000 --beam airy)
  timed "native, $n components, 1 thread (taskset -c 0)" taskset -c 0 "$bin" predict "$ms" "${common[@]}" --threads 1
  timed "native, $n components, $(nproc) threads" "$bin" predict "$ms" "${common[@]}"
  [ "$n" = 100 ] && timed "native per-row method, $n components, $(nproc) threads" "$bin" predict "$ms" "${common[@]}" --native-method perRow
  timed "wsclean -predict, $n components, one image per SPW (16)" "$bin" predict "$ms" "${common[@]}" --method wsclean --work-dir "$work"
  timed "wsclean -predict, $n components, one image" "$bin" predict "$ms" "${common[@]}" --method wsclean --channels-out 1 --work-dir "$work"
done
echo
echo "### Catalog selection (1.8 million rows, NVSS layout, cone of the beam's first null)"
echo
cat="$work/nvss1.8M.fits"
/usr/bin/python3 bench/make_nvss_catalog.py 1800000 "$cat" >/dev/null
rm -f "$cat.selfcal-index"
echo "| run | process wall s | inside the process |"
echo "|---|---|---|"
for label in "first read (FITS → sort → cache file)" "next process (cache file)"; do
  out=$(/usr/bin/time -f "TIME %e" "$bin" predict "$ms" --catalog "$cat" --min-mjy 10 --max-components 500 --save-source-list "$work/sel.txt" \
        --method dft --threads "$(nproc)" 2>&1)
  printf '| %s | %s | %s |\n' "$label (+ predict of the 500 brightest)" "$(echo "$out" | awk '/^TIME/ {print $2}')" \
    "$(echo "$out" | grep -E '^selected' | sed 's/|/\//g')"
done
echo
echo "Command: \`bench/sky-models.sh $*\`"
