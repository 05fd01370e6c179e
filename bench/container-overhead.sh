#!/usr/bin/env bash
# Overhead of the container executor over native WSClean: median wall time of N repeats of
#   1. `wsclean --version` natively, with a bare `docker exec`, and with the executor's whole
#      per-call sequence (inspect the container; exec WSClean through the executor's wrapper;
#      exec the sweep of what the call left inside) — the engine calls ContainerWSCleanExecutor
#      makes for one successful call (its wrapper and sweep scripts are copied here verbatim);
#   2. a tiny imaging run (selfcal simulate --preset small, 256 px, niter 200), natively and
#      through the executor's sequence.
#
#   bench/container-overhead.sh [N] [ENGINE]      (defaults: 20 docker)
#
# Needs WSClean, a running engine with selfcal-wsclean:latest (scripts/start-dockerd.sh,
# scripts/build-wsclean-image.sh), and a built selfcal (swift build).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
engine=${2:-docker}
image=selfcal-wsclean:latest
if [ "$engine" = podman ]; then export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/scripts/podman-containers.conf}; fi
selfcal=.build/release/selfcal; [ -x $selfcal ] || selfcal=.build/debug/selfcal
[ -x $selfcal ] || { echo "build selfcal first (swift build)" >&2; exit 2; }

work=$(mktemp -d /tmp/selfcal-bench-overhead.XXXXXX)
name=selfcal-bench-$$
cleanup() { timeout 30 $engine rm -f $([ "$engine" = podman ] && echo "-t 0") $name >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
$selfcal simulate --out "$work/s.ms" --preset small --no-gains >/dev/null
timeout 30 $engine run -d --init --network none --pull never --name $name --user "$(id -u):$(id -g)" \
  -v "$work:/data" $image sleep infinity >/dev/null

# Copied from ContainerWSCleanExecutor.execWrapper and .stopScript.
wrapper='f=$1; t=$2; k=$3; shift 3; echo $$ > "$f"; if command -v timeout >/dev/null 2>&1; then exec timeout -k "$k" "$t" "$@"; fi; exec "$@"'
stop='f=$1; g=$2; i=0; while [ ! -s "$f" ] && [ $i -lt 10 ]; do sleep 0.1; i=$((i+1)); done; [ -s "$f" ] || exit 0; p=$(cat "$f"); [ "$p" -gt 1 ] 2>/dev/null || exit 0; if [ "$g" -gt 0 ] && kill -0 -$p 2>/dev/null; then kill -TERM -$p 2>/dev/null; n=$((g*10)); while [ $n -gt 0 ] && kill -0 -$p 2>/dev/null; do sleep 0.1; n=$((n-1)); done; fi; kill -KILL -$p 2>/dev/null; n=30; while [ $n -gt 0 ] && kill -0 -$p 2>/dev/null; do sleep 0.1; n=$((n-1)); done; rm -f "$f"; if kill -0 -$p 2>/dev/null; then echo "process group $p survived SIGKILL"; exit 3; fi'

executor_call() { # the executor's engine calls for one successful WSClean call
  $engine inspect --type container --format '{{.State.Running}} {{.State.Status}}' $name >/dev/null
  $engine exec -w /data $name sh -c "$wrapper" selfcal-exec /tmp/bench.pid 3630s 10s "$@"
  $engine exec $name sh -c "$stop" selfcal-stop /tmp/bench.pid 0
}

ms() { local t0=$(date +%s%N); "$@" >/dev/null 2>&1; echo $(( ($(date +%s%N) - t0) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2] + a[NR/2+1]) / 2)}'; }

# Native and container runs alternate, so that the load other work puts on the machine falls
# on both alike; each row is the median of its repeats.
img=(-quiet -size 256 256 -scale 20asec -niter 200 -weight natural -no-update-model-required)
vn=(); ve=(); vx=()
for _ in $(seq "$n"); do
  vn+=($(ms wsclean --version))
  ve+=($(ms $engine exec $name wsclean --version))
  vx+=($(ms executor_call wsclean --version))
done
nimg=$(( n < 7 ? n : 7 ))
in_=(); ix=()
for _ in $(seq "$nimg"); do
  in_+=($(ms wsclean "${img[@]}" -name "$work/native" "$work/s.ms"))
  ix+=($(ms executor_call wsclean "${img[@]}" -name /data/ctr /data/s.ms))
done
v_native=$(printf '%s\n' "${vn[@]}" | median)
v_exec=$(printf '%s\n' "${ve[@]}" | median)
v_executor=$(printf '%s\n' "${vx[@]}" | median)
i_native=$(printf '%s\n' "${in_[@]}" | median)
i_executor=$(printf '%s\n' "${ix[@]}" | median)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"); $engine $($engine version --format '{{.Server.Version}}' 2>/dev/null || $engine --version)"
echo
echo "| what | native (ms) | container (ms) | overhead (ms) | ratio |"
echo "|---|---|---|---|---|"
echo "| \`wsclean --version\`, bare \`$engine exec\` (median of $n) | $v_native | $v_exec | $((v_exec - v_native)) | $(ratio "$v_exec" "$v_native") |"
echo "| \`wsclean --version\`, executor's calls: inspect + exec + sweep (median of $n) | $v_native | $v_executor | $((v_executor - v_native)) | $(ratio "$v_executor" "$v_native") |"
echo "| imaging 256 px, niter 200, small MS (median of $nimg) | $i_native | $i_executor | $((i_executor - i_native)) | $(ratio "$i_executor" "$i_native") |"
