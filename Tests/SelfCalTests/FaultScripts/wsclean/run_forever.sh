#!/bin/bash
# Fault: a long WSClean call (with a helper, like WSClean's own threads) that obeys SIGTERM;
# for cancellation and for a container killed mid-call. Writes its pid to <name>.pid and prints
# "ready" once running. With -fault-quick it writes <name>-image.fits and exits 0 instead.
name=""; quick=0
while [ $# -gt 0 ]; do
  case "$1" in -name) name=$2; shift ;; -fault-quick) quick=1 ;; esac
  shift
done
if [ $quick = 1 ]; then echo "fake image" > "$name-image.fits"; echo "quick run done"; exit 0; fi
echo "$$" > "$name.pid"
(exec -a "selfcal-fault-helper $name" sleep 1000) &
echo "ready"
wait
