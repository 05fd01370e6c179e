#!/bin/bash
# Fault: WSClean -predict in a one-shot container whose volume unmount hangs. It prints its
# progress the way WSClean does (one line, growing), then its last line, then never exits.
echo "WSClean version 3.1.0 (fault script: stall after cleanup)"
printf ' 0%%....10%%....'
sleep 0.6                      # long enough for the runner to pass on the unfinished line
for p in 20 30 40 50 60 70 80 90; do printf '%d%%....' "$p"; sleep 0.02; done
printf '100%%\n'
echo "Writing model data..."
echo "Cleaning up temporary files..."
sleep 1000
