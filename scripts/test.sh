#!/usr/bin/env bash
# Installs what is missing, builds dsd with its tests, examples and experiments (warnings are
# errors), and runs every test with ctest. Usage: scripts/test.sh [build-dir] [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
dsd_ensure_packages "${dsd_packages[@]}" "${dsd_test_packages[@]}" "${dsd_torch_packages[@]}" \
  "${dsd_dist_packages[@]}"
build="${1:-build/test}"
shift || true
python=$(dsd_python_reader "$build/python")
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDSD_BUILD_TESTS=ON \
      -DDSD_BUILD_EXAMPLES=ON -DDSD_BUILD_EXPERIMENTS=ON -DDSD_BUILD_BENCH=ON -DDSD_BUILD_TORCH=ON -DDSD_BUILD_DIST=ON -DDSD_WERROR=ON \
      -DPython3_EXECUTABLE="$python" -DDSD_REQUIRE_SAFETENSORS=ON "$@"
cmake --build "$build" -j "$(dsd_jobs)"
ctest --test-dir "$build" --output-on-failure --timeout 1200 -j "$(dsd_jobs)"  # a hung test (an MPI deadlock) fails
