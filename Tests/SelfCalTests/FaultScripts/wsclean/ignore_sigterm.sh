#!/bin/bash
# Fault: WSClean that ignores SIGTERM (its children inherit SIG_IGN) and never ends.
trap '' TERM
echo "WSClean version 3.1.0 (fault script: ignores SIGTERM)"
echo "ignoring SIGTERM from now on"
while true; do sleep 0.1; done
