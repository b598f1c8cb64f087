#!/usr/bin/env bash
# Checks that no thread of the given processes can run a SIGINT or SIGTERM handler: none is
# installed, and every thread but the one watcher ("dsd-signals", which takes them with sigwait)
# blocks both. A handler on a thread inside oneDNN's GEMM kernel, whose stack pointer then points
# at a heap buffer, wrote its signal frame over the heap. Usage: signal_mask.sh PID...
set -euo pipefail
want=$(( (1 << (2 - 1)) | (1 << (15 - 1)) ))  # SIGINT and SIGTERM in /proc's signal masks
status=0
for pid in "$@"; do
  caught=$(awk '/^SigCgt:/ {print $2}' "/proc/$pid/status")
  if (( (0x$caught & want) != 0 )); then
    echo "process $pid has a handler for SIGINT or SIGTERM (SigCgt $caught)"
    status=1
  fi
  watchers=0
  for task in /proc/"$pid"/task/*; do
    name=$(cat "$task/comm" 2>/dev/null) || continue  # the thread has just ended
    blocked=$(awk '/^SigBlk:/ {print $2}' "$task/status" 2>/dev/null) || continue
    if [ "$name" = dsd-signals ]; then
      watchers=$((watchers + 1))
    elif (( (0x$blocked & want) != want )); then
      echo "thread ${task##*/} ($name) of process $pid does not block SIGINT and SIGTERM" \
           "(SigBlk $blocked)"
      status=1
    fi
  done
  if [ "$watchers" -ne 1 ]; then
    echo "process $pid has $watchers signal watcher threads, expected 1"
    status=1
  fi
done
exit $status
