#!/bin/bash
# Fault: a tool that ignores SIGTERM (and so do the children it starts: SIG_IGN is inherited).
trap '' TERM
echo "ignoring SIGTERM from now on"
while true; do sleep 0.1; done
