#!/usr/bin/env bash
# The README's screenshot, docs/report.png: a real DSD run of fashion_mlp (epochs 1,1,1 on 3000
# training images) beside its dense baseline (--compare), written as one HTML report (--report)
# and rendered by headless Chromium with the script the browser test runs
# (tests/cli/report_browser.py, which checks the rendering as it goes).
# Usage: scripts/report_screenshot.sh [OUT.png]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
dsd_ensure_packages "${dsd_packages[@]}" python3 chromium
build=build/release
out="${1:-docs/report.png}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDSD_BUILD_TESTS=OFF -DDSD_BUILD_EXAMPLES=ON \
      -DDSD_BUILD_EXPERIMENTS=ON >/dev/null
cmake --build "$build" -j "$(dsd_jobs)" --target fashion_mlp
"$build/experiments/fashion_mlp" --compare --epochs 1,1,1 --train-limit 3000 --validation 1000 \
  --threads 2 --quiet --seed 1 --report "$build/report.html"
python3 tests/cli/report_browser.py "$build/report.html" "$out" 1400 2600
