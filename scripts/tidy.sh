#!/usr/bin/env bash
# clang-tidy (.clang-tidy at the root) over every host header of include/dsd/, through the one
# translation unit that includes them all (tests' dsd_all_headers target); any finding fails.
# Usage: scripts/tidy.sh BUILD_DIR   (a build configured with -DCMAKE_EXPORT_COMPILE_COMMANDS=ON,
# anywhere: the configuration is named, not searched from the generated file's directory)
set -euo pipefail
build=$(realpath -m "${1:?usage: scripts/tidy.sh BUILD_DIR}")
cd "$(dirname "$0")/.."
[ -f "$build/compile_commands.json" ] || {
  echo "tidy: $build/compile_commands.json is missing; configure with -DCMAKE_EXPORT_COMPILE_COMMANDS=ON" >&2
  exit 2
}
tidy=$(command -v clang-tidy-14 || command -v clang-tidy) || { echo "tidy: clang-tidy not found" >&2; exit 2; }
"$tidy" -p "$build" --config-file=.clang-tidy --quiet --warnings-as-errors='*' "$build/tests/all_headers.cpp" 2>&1 |
  { grep -v "warnings generated" || true; }
echo "tidy: no findings in include/dsd/"
