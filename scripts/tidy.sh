#!/usr/bin/env bash
# clang-tidy (.clang-tidy at the root) over every host header of include/dsd/, through the one
# translation unit that includes them all (tests' dsd_all_headers target); any finding fails.
# Usage: scripts/tidy.sh BUILD_DIR   (a build configured with -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:?usage: scripts/tidy.sh BUILD_DIR}"
[ -f "$build/compile_commands.json" ] || {
  echo "tidy: $build/compile_commands.json is missing; configure with -DCMAKE_EXPORT_COMPILE_COMMANDS=ON" >&2
  exit 2
}
tidy=$(command -v clang-tidy-14 || command -v clang-tidy) || { echo "tidy: clang-tidy not found" >&2; exit 2; }
"$tidy" -p "$build" --quiet --warnings-as-errors='*' "$build/tests/all_headers.cpp" 2>&1 |
  { grep -v "warnings generated" || true; }
echo "tidy: no findings in include/dsd/"
