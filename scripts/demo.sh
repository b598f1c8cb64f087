#!/usr/bin/env bash
# Installs what is missing, builds Release, and runs the main demo: DSD on Fashion-MNIST with a
# LeNet-300-100 MLP against its equal-epoch dense baseline, and writes both runs as one HTML
# report (build/release/report.html). Extra arguments go to fashion_mlp.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
dsd_ensure_packages "${dsd_packages[@]}"
build=build/release
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDSD_BUILD_TESTS=OFF -DDSD_BUILD_EXAMPLES=ON \
      -DDSD_BUILD_EXPERIMENTS=ON >/dev/null
cmake --build "$build" -j "$(dsd_jobs)" --target fashion_mlp
# Both runs also as one HTML page (curves by phase, each layer's weights at every phase boundary),
# unless the arguments name their own --report.
report=()
[[ " $* " == *" --report "* || " $* " == *" --report="* ]] || report=(--report "$build/report.html")
"$build/experiments/fashion_mlp" --compare "${report[@]}" "$@"
