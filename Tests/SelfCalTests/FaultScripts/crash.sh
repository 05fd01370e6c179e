#!/bin/bash
# Fault: a tool that crashes midway. $1: "segv" (dies of SIGSEGV) or "exit139" (exits 139,
# as a shell reports a child that died of SIGSEGV).
ulimit -c 0                    # no core file
echo "step 1 of 3: reading the measurement set"
echo "step 2 of 3: gridding; about to crash"
case "$1" in
    segv) kill -SEGV $$ ;;
    exit139) exit 139 ;;
esac
echo "step 3 of 3: never reached"
