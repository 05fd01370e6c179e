#!/bin/bash
# Fault: WSClean that talks far too much: FAULT_FLOOD_BYTES (default 50 MB) of output, then its
# image, then exits 0. Takes WSClean's arguments.
name=""
while [ $# -gt 0 ]; do
  case "$1" in -name) name=$2; shift ;; esac
  shift
done
yes "flooding the log with a line that repeats and repeats and repeats" | head -c "${FAULT_FLOOD_BYTES:-52428800}"
echo "fake image" > "$name-image.fits"
echo "flood done"
