#!/usr/bin/env bash
# SIGINT during training: the example finishes its step, writes a checkpoint, exits with 130,
# and the run resumes from that checkpoint to the end. Before the signal, once OpenMP's workers
# run, no thread but the watcher may take SIGINT (signal_mask.sh). Usage: sigint.sh EXE WORKDIR
set -euo pipefail
exe="$1"
work="$2"
here="$(cd "$(dirname "$0")" && pwd)"
rm -rf "$work" && mkdir -p "$work"
args=(--epochs 3,3,3 --quiet --threads 2 --checkpoint "$work/ckpt.safetensors")
"$exe" "${args[@]}" > "$work/first.log" 2>&1 &
pid=$!
# Main thread, watcher and an OpenMP worker: the model is being evaluated or trained.
for _ in $(seq 600); do
  [ "$(ls /proc/$pid/task 2>/dev/null | wc -l)" -ge 3 ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
sleep 1  # into training
mask=0
"$here/signal_mask.sh" "$pid" || mask=1
kill -INT "$pid" || true
set +e
wait "$pid"
rc=$?
set -e
cat "$work/first.log"
[ "$mask" -eq 0 ] || { echo "a thread could take SIGINT in a handler"; exit 1; }
[ "$rc" -eq 130 ] || { echo "expected exit 130 after SIGINT, got $rc"; exit 1; }
grep -q "^interrupted at phase [0-9]*, epoch [0-9]*, batch [0-9]*; checkpoint written to" \
  "$work/first.log"
[ -s "$work/ckpt.safetensors" ] || { echo "no checkpoint"; exit 1; }
ls "$work" | grep -q '\.tmp' && { echo "temporary file left behind"; exit 1; }
"$exe" "${args[@]}" --resume "$work/ckpt.safetensors" | tee "$work/second.log"
grep -q "^resuming dsd at phase" "$work/second.log"
grep -q "^final test accuracy: 0\.[5-9]" "$work/second.log"
