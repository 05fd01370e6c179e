#!/bin/bash
# Fault: a tool that leaves a helper running, its output still on the log file, and exits 0.
# $1: file to write the helper's pid to.
sleep 1000 &
echo "$!" > "$1"
echo "helper $! started; exiting 0"
exit 0
