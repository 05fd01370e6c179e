#!/bin/bash
# A long job with a helper in the background, for cancellation. $1: file for the helper's pid.
sleep 1000 &
echo "$!" > "$1"
echo "ready"
wait
