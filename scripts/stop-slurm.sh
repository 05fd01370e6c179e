#!/usr/bin/env bash
# Stops the single-node Slurm that scripts/start-slurm.sh started.
set -u
pkill -x slurmctld 2>/dev/null
pkill -x slurmd 2>/dev/null
exit 0
