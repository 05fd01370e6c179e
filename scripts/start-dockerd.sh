#!/usr/bin/env bash
# Starts the Docker daemon if it is not answering, and waits until it is ready, within a deadline.
# Idempotent: a daemon that already answers is left alone. Used by the tests and by CI.
#
#   scripts/start-dockerd.sh [DEADLINE_S]      (default 30; also SELFCAL_DOCKERD_DEADLINE_S)
#
# How (ENVIRONMENT.md): plain `dockerd` (ready in about 0.5 s here); if it dies at once, again with
# `--iptables=false --bridge=none`. Each readiness probe is `timeout 3 docker info`; between probes
# the dockerd process must still be alive (a crashed daemon is reported, not waited for).
# Exit status: 0 ready; 1 could not start (the reason is on stderr); 2 dockerd/docker not installed
# (install: SELFCAL_WITH_CONTAINERS=1 scripts/install-deps.sh); 3 not root.
# dockerd's own output goes to ${SELFCAL_DOCKERD_LOG:-/var/log/selfcal-dockerd.log}.
set -uo pipefail

deadline_s=${1:-${SELFCAL_DOCKERD_DEADLINE_S:-30}}
log=${SELFCAL_DOCKERD_LOG:-/var/log/selfcal-dockerd.log}
say() { echo "start-dockerd: $*" >&2; }

# Probes the default socket whatever DOCKER_HOST the caller has (a test may point it elsewhere).
probe() { env -u DOCKER_HOST -u DOCKER_CONTEXT timeout 3 docker info >/dev/null 2>&1; }

if ! command -v docker >/dev/null; then
  say "the docker client is not installed (SELFCAL_WITH_CONTAINERS=1 scripts/install-deps.sh)"; exit 2
fi
if probe; then exit 0; fi
if ! command -v dockerd >/dev/null; then
  say "dockerd is not installed (SELFCAL_WITH_CONTAINERS=1 scripts/install-deps.sh)"; exit 2
fi
if [ "$(id -u)" != 0 ]; then
  say "dockerd is not running and only root can start it here (run this script as root)"; exit 3
fi

# One starter at a time (tests run in parallel; several checkouts share this machine's daemon).
exec 9>/run/selfcal-start-dockerd.lock
if ! flock -w "$deadline_s" 9; then say "another start-dockerd held the lock for ${deadline_s} s"; exit 1; fi
if probe; then exit 0; fi

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
start_ms=$(now_ms)
end_ms=$(( start_ms + deadline_s * 1000 ))
elapsed() { local d=$(( $(now_ms) - start_ms )); printf '%d.%03d' $((d / 1000)) $((d % 1000)); }

# A dockerd that is running but not answering (starting up, or wedged): wait for it, don't start a second.
existing=$(pgrep -x dockerd | head -1)

try_start() { # $@: extra dockerd flags. Returns 0 when ready, 1 when the daemon died, 2 at the deadline.
  local pid
  if [ -n "$existing" ]; then
    pid=$existing; existing=""
    say "dockerd (pid $pid) is running but not answering; waiting for it"
  else
    # setsid: its own session, so the daemon outlives the test process that started it.
    setsid dockerd "$@" >>"$log" 2>&1 </dev/null &
    pid=$!
    say "started dockerd $* (pid $pid; log $log)"
  fi
  while :; do
    if probe; then say "ready after $(elapsed) s"; return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then say "dockerd (pid $pid) exited; last lines of $log:"; tail -5 "$log" >&2; return 1; fi
    if [ "$(now_ms)" -ge "$end_ms" ]; then return 2; fi
    sleep 0.2
  done
}

try_start; rc=$?
if [ $rc = 1 ]; then
  # Leftover pid/socket files of the dead daemon would make the next one refuse to start.
  rm -f /var/run/docker.pid
  try_start --iptables=false --bridge=none; rc=$?
fi
case $rc in
  0) exit 0 ;;
  2) say "dockerd did not answer \`docker info\` within ${deadline_s} s (see $log)"; exit 1 ;;
  *) say "dockerd could not be started (see $log)"; exit 1 ;;
esac
