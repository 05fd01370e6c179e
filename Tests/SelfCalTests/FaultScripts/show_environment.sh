#!/bin/bash
# Prints where it runs and what it was given.
echo "cwd=$(pwd)"
echo "SELFCAL_TEST_VALUE=$SELFCAL_TEST_VALUE"
for a in "$@"; do echo "arg=[$a]"; done
