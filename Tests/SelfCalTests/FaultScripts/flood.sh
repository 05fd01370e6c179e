#!/bin/bash
# Fault: a tool that talks far too much. $1: how many bytes.
yes "flooding the log with a line that repeats and repeats and repeats" | head -c "$1"
echo "flood done"
