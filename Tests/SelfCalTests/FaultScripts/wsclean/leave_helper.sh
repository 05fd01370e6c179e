#!/bin/bash
# Fault: WSClean that writes its image, leaves a helper running that holds the output (and the
# log) open, and exits 0. The helper's pid goes to <name>.helper.pid; its command line carries the
# output name, so that a test can find it in the process table.
name=""
while [ $# -gt 0 ]; do
  case "$1" in -name) name=$2; shift ;; esac
  shift
done
echo "fake image" > "$name-image.fits"
(exec -a "selfcal-fault-helper $name" sleep 1000) >> "$name-image.fits" &
echo "$!" > "$name.helper.pid"
echo "helper $! started; exiting 0"
exit 0
