#!/bin/bash
# Fault: WSClean that does its work (writes <name>-image.fits unless given -fault-no-output),
# prints its progress and "Cleaning up temporary files...", then never exits, as in a one-shot
# container whose volume unmount hangs. Takes WSClean's arguments.
name=""; output=1
while [ $# -gt 0 ]; do
  case "$1" in -name) name=$2; shift ;; -fault-no-output) output=0 ;; esac
  shift
done
echo "WSClean version 3.1.0 (fault script: hang after cleanup)"
printf ' 0%%....'
for p in 10 20 30 40 50 60 70 80 90; do printf '%d%%....' "$p"; sleep 0.02; done
printf '100%%\n'
if [ $output = 1 ]; then echo "fake image" > "$name-image.fits"; fi
echo "Cleaning up temporary files..."
sleep 1000
