#!/usr/bin/env bash
# SIGINT to one rank of a 2-rank data-parallel run: both ranks stop after the same batch, the one
# checkpoint (rank 0's) records that batch, and resuming from it ends bitwise where the
# uninterrupted run ends. Before the signal no thread of either rank but its watcher may take
# SIGINT (signal_mask.sh). Usage: dist_sigint.sh MPIEXEC EXE WORKDIR
set -euo pipefail
mpiexec="$1"
exe="$2"
work="$3"
here="$(cd "$(dirname "$0")" && pwd)"
rm -rf "$work" && mkdir -p "$work"
# 200 global batches per epoch: the signal, sent once the first epoch's checkpoint is written,
# lands inside the second or third epoch. Every run is bounded by timeout.
run=(timeout -k 10 300 "$mpiexec" --oversubscribe --allow-run-as-root -np 2 "$exe"
     --epochs 1,1,1 --train-limit 12800 --validation 1000 --quiet --threads 1 --seed 5)
fail() { echo "$*"; exit 1; }
accuracy() { grep -o "final test accuracy: [0-9.]*" "$1"; }

"${run[@]}" --checkpoint "$work/whole.safetensors" > "$work/whole.log" 2>&1 ||
  { cat "$work/whole.log"; fail "the uninterrupted run failed"; }

"${run[@]}" --checkpoint "$work/run.safetensors" > "$work/first.log" 2> "$work/first.err" &
job=$!
for _ in $(seq 1200); do
  [ -e "$work/run.safetensors" ] && break
  kill -0 "$job" 2>/dev/null || break
  sleep 0.05
done
ranks=$(pgrep -P "$(pgrep -P "$job")" || true)  # timeout -> mpiexec -> the ranks
rank1=""
for pid in $ranks; do
  tr '\0' '\n' < "/proc/$pid/environ" | grep -Eq '^(OMPI_COMM_WORLD_RANK|PMIX_RANK|PMI_RANK)=1$' &&
    rank1=$pid
done
mask=0
[ -n "$rank1" ] && { "$here/signal_mask.sh" $ranks || mask=1; }
[ -n "$rank1" ] && kill -INT "$rank1"
set +e
wait "$job"
rc=$?
set -e
cat "$work/first.log" "$work/first.err"
[ -n "$rank1" ] || fail "rank 1 was not found among the processes of mpiexec (${ranks:-none})"
[ "$mask" -eq 0 ] || fail "a thread could take SIGINT in a handler"
[ "$rc" -eq 130 ] || fail "expected exit 130 after SIGINT to rank 1, got $rc"

# Both ranks stopped at one place, and the checkpoint records it.
stopped=$(grep -E "^rank [01] of 2 stopped at " "$work/first.err" || true)
[ "$(echo "$stopped" | grep -c .)" -eq 2 ] || fail "not both ranks stopped"
stops=$(echo "$stopped" | sed 's/^rank [01] of 2 stopped at //' | sort -u)
[ "$(echo "$stops" | wc -l)" -eq 1 ] || fail "the ranks stopped at different batches: $stops"
grep -q "^interrupted at $stops; checkpoint written to $work/run.safetensors" "$work/first.log" ||
  fail "rank 0 did not report its checkpoint at $stops"
meta() {  # a loop-state entry of the checkpoint's JSON header
  grep -aoE "\"dsd\.loop\.$1\": ?\"[0-9]+\"" "$work/run.safetensors" | grep -oE '[0-9]+"$' |
    tr -d '"'
}
recorded="phase $(meta phase_index), epoch $(meta epoch), batch $(meta batch)"
[ "$recorded" = "$stops" ] || fail "the checkpoint records $recorded, the ranks stopped at $stops"
ls "$work" | grep -q '\.tmp' && fail "temporary file left behind"
echo "both ranks stopped at $stops"

"${run[@]}" --checkpoint "$work/run.safetensors" --resume "$work/run.safetensors" \
  > "$work/second.log" 2>&1 || { cat "$work/second.log"; fail "the resumed run failed"; }
cat "$work/second.log"
grep -q "^resuming dsd at $stops from" "$work/second.log" || fail "the run did not resume at $stops"
want=$(accuracy "$work/whole.log")
got=$(accuracy "$work/second.log")
[ -n "$want" ] && [ "$got" = "$want" ] ||
  fail "the resumed run ends at '$got', the uninterrupted one at '$want'"
cmp "$work/whole.safetensors" "$work/run.safetensors" ||
  fail "the resumed run's final checkpoint differs from the uninterrupted run's"
