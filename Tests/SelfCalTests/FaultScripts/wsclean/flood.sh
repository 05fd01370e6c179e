#!/bin/bash
# Fault: WSClean that talks far too much: -fault-flood-bytes N (default 32 MiB) of output, then its
# image, then exits 0. Takes WSClean's arguments.
name=""; bytes=$((32 << 20))
while [ $# -gt 0 ]; do
  case "$1" in -name) name=$2; shift ;; -fault-flood-bytes) bytes=$2; shift ;; esac
  shift
done
yes "flooding the log with a line that repeats and repeats and repeats" | head -c "$bytes"
echo "fake image" > "$name-image.fits"
echo "flood done"
