#!/bin/bash
# A WSClean that starts a predict and never finishes: for seeding deadlines. It writes its pid
# to "<name>.pid" (the -name argument) so a test can check that it was killed.
name=""
while [ $# -gt 0 ]; do
  if [ "$1" = "-name" ]; then name="$2"; shift; fi
  shift
done
echo "$$" > "${name:-/tmp/hanging_wsclean}.pid"
echo "WSClean version 3.1.0 (fake, hangs)"
echo "Predicting..."
sleep 1000 &
wait
