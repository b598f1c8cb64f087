#!/usr/bin/env bash
# DeepSpeech 1's recipe shape on the GPU trainer, against its fair control (issue 22): a heavily
# over-parameterised MLP (fashion_mlp_cuda, 784-4096-4096-10, every layer pruned) trained with
# experiments/recipes/deepspeech1-shape-mlp.json (D → S 50 % → D → S 25 % → D at DS1's rates
# scaled to lr 0.01, Nesterov) and with the same five phases and rates without pruning, paired
# seeds, by scripts/results.py --paired. Seeds are added one at a time while the next one still
# fits the budget, so the table under $OUT always holds every finished seed.
#
#   scripts/gpu_ds1.sh [DIR]   DIR: binaries from scripts/gpu_prebuild.sh (default build/gpu/bin)
#
# Environment: OUT (default build/gpu-ds1; the table is $OUT/ds1_mlp.md, the runs' cache
# $OUT/cache.json), DS1_BUDGET_S (300), DS1_SCALE (0.4: 20 epochs a phase), DS1_TRAIN_LIMIT
# (10000 images), DS1_HIDDEN (4096,4096), DS1_SEEDS (5), DS1_EXE (default DIR/fashion_mlp_cuda;
# DS1_EXE=build/release/experiments/fashion_mlp DS1_HIDDEN=300,100 tries the script on a CPU).
set -uo pipefail
cd "$(dirname "$0")/.."
bin=$(cd "${1:-build/gpu/bin}" 2>/dev/null && pwd) || { echo "gpu_ds1: no directory ${1:-build/gpu/bin}"; exit 2; }
export LD_LIBRARY_PATH="$bin:/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
out="${OUT:-build/gpu-ds1}"
mkdir -p "$out"
exe="${DS1_EXE:-$bin/fashion_mlp_cuda}"
[ -x "$exe" ] || { echo "gpu_ds1: $exe is not an executable"; exit 2; }
data="$bin/data"
[ -f "$data/train-images-idx3-ubyte.gz" ] || data=/usr/share/datasets/fashion-mnist
budget=${DS1_BUDGET_S:-300} scale=${DS1_SCALE:-0.4} limit=${DS1_TRAIN_LIMIT:-10000}
hidden=${DS1_HIDDEN:-4096,4096} most=${DS1_SEEDS:-5}
card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
epochs=$(python3 -c "import math; print(max(1, math.floor(50 * $scale + 0.5)))")  # std::round's halves
start=$SECONDS status=0 done=0
for seeds in $(seq 1 "$most"); do
  t0=$SECONDS
  python3 scripts/results.py --exe "$exe" --cache "$out/cache.json" --out "$out/ds1_mlp.md" \
      --paired dsd,dense --seeds "$seeds" ${card:+--machine "$card"} \
      --recipe experiments/recipes/deepspeech1-shape-mlp.json --scale-epochs "$scale" --train-limit "$limit" \
      --title "MLP 784-${hidden//,/-}-10, every layer pruned, on $limit images: DeepSpeech 1's recipe (D → S 50 % → D → S 25 % → D, DS1's rates scaled to lr 0.01, Nesterov), $epochs epoch(s) a phase, vs the same five phases and rates without pruning (equal epochs)" \
      -- --hidden "$hidden" --data "$data" --exclude "" >"$out/results.log" 2>&1 ||
    { echo "gpu_ds1: results.py failed at seed $seeds:"; tail -20 "$out/results.log"; status=1; break; }
  done=$seeds
  per=$((SECONDS - t0)) elapsed=$((SECONDS - start))
  echo "seed $seeds done in $per s ($elapsed s in all)"
  [ $((elapsed + per)) -le "$budget" ] || break
done
[ "$done" -gt 0 ] && cat "$out/ds1_mlp.md"
echo "gpu_ds1: $done of $most paired seeds in $((SECONDS - start)) s, table in $out/ds1_mlp.md"
exit $status
