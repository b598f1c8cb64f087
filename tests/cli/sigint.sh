#!/usr/bin/env bash
# SIGINT during training: the example finishes its step, writes a checkpoint, exits with 130,
# and the run resumes from that checkpoint to the end. Usage: sigint.sh EXE WORKDIR
set -euo pipefail
exe="$1"
work="$2"
rm -rf "$work" && mkdir -p "$work"
args=(--epochs 3,3,3 --quiet --threads 2 --checkpoint "$work/ckpt.safetensors")
set +e
timeout --preserve-status -s INT 3 "$exe" "${args[@]}" > "$work/first.log" 2>&1
rc=$?
set -e
cat "$work/first.log"
[ "$rc" -eq 130 ] || { echo "expected exit 130 after SIGINT, got $rc"; exit 1; }
grep -q "interrupted; checkpoint written to" "$work/first.log"
[ -s "$work/ckpt.safetensors" ] || { echo "no checkpoint"; exit 1; }
ls "$work" | grep -q '\.tmp' && { echo "temporary file left behind"; exit 1; }
"$exe" "${args[@]}" --resume "$work/ckpt.safetensors" | tee "$work/second.log"
grep -q "^resuming dsd at phase" "$work/second.log"
grep -q "^final test accuracy: 0\.[5-9]" "$work/second.log"
