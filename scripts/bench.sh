#!/usr/bin/env bash
# Builds and runs dsd_bench, saves the JSON under build/bench/, and regenerates
# docs/benchmarks.md from it. Usage: scripts/bench.sh [--long] [--threads=1,2] [benchmark flags]
#   scripts/bench.sh --paper [--threads=2]: the paper's networks at their real shapes instead,
#   dsd_bench_paper beside torch.nn.utils.prune (bench/torch_prune.py) in one sitting (about 25
#   minutes on 2 cores), into docs/benchmarks.md's section on them. Both use OpenBLAS (the
#   reference BLAS would slow every step and hide what masking costs).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
if [[ "${1:-}" == "--paper" ]]; then
  shift
  threads=2
  for a in "$@"; do [[ "$a" == --threads=* ]] && threads="${a#--threads=}"; done
  dsd_ensure_packages "${dsd_packages[@]}" "${dsd_torch_packages[@]}" libopenblas0-pthread
  build=build/bench-paper
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDSD_BUILD_TESTS=OFF -DDSD_BUILD_EXAMPLES=OFF \
        -DDSD_BUILD_BENCH=ON -DDSD_BUILD_TORCH=ON >/dev/null
  cmake --build "$build" -j "$(dsd_jobs)" --target dsd_bench_paper
  export OPENBLAS_NUM_THREADS="$threads"
  "$build/bench/dsd_bench_paper" --threads="$threads" --benchmark_out="$build/dsd_bench_paper.json" \
    --benchmark_out_format=json
  /usr/bin/python3 bench/torch_prune.py --threads "$threads" --repetitions 3 --out "$build/torch_prune.json"
  python3 scripts/paper_bench_report.py "$build/dsd_bench_paper.json" "$build/torch_prune.json" docs/benchmarks.md
  echo "wrote docs/benchmarks.md's paper networks section from $build/*.json"
  exit 0
fi
dsd_ensure_packages "${dsd_packages[@]}" python3
build=build/bench
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDSD_BUILD_TESTS=OFF -DDSD_BUILD_EXAMPLES=OFF \
      -DDSD_BUILD_BENCH=ON >/dev/null
cmake --build "$build" -j "$(dsd_jobs)" --target dsd_bench
json="$build/dsd_bench.json"
"$build/bench/dsd_bench" --benchmark_out="$json" --benchmark_out_format=json \
  --benchmark_min_time=0.3 "$@"
python3 scripts/bench_report.py "$json" docs/benchmarks.md
echo "wrote docs/benchmarks.md from $json"
