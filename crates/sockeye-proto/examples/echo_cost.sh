#!/bin/sh
# Instructions per message (callgrind, difference of two runs) and allocations per message.
BIN=${BIN:-target/release/examples/echo_cost}
ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
for case in "text 20 8 0" "binary 1024 8 0" "text 20 1 0" "binary 1024 1 0" "text 20 1 1" "binary 1024 1 1"; do
  set -- $case
  per=$3
  n=$((2000 / per)); [ $n -lt 250 ] && n=250
  a=$(ir $BIN $case $n); b=$(ir $BIN $case $((2*n)))
  allocs=$($BIN $case $n | sed 's/.*, //')
  echo "$case: $(( (b - a) / (n * per) )) instructions/message, $allocs"
done
