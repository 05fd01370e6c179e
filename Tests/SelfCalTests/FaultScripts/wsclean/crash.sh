#!/bin/bash
# Fault: WSClean that crashes midway (dies of SIGSEGV).
ulimit -c 0
echo "WSClean version 3.1.0 (fault script: crash)"
echo "step 1 of 3: reading the measurement set"
echo "step 2 of 3: gridding; about to crash"
kill -SEGV $$
echo "step 3 of 3: never reached"
