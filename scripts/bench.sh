#!/usr/bin/env bash
# Builds and runs dsd_bench, saves the JSON under build/bench/, and regenerates
# docs/benchmarks.md from it. Usage: scripts/bench.sh [--long] [--threads=1,2] [benchmark flags]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
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
