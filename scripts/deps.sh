#!/usr/bin/env bash
# Sourced by the other scripts: installs the Debian packages dsd needs, only those missing.
# Needs root (or sudo) only when something is actually missing.

dsd_packages=(cmake make g++ pkg-config libeigen3-dev libdnnl-dev doctest-dev zlib1g-dev
              libcli11-dev nlohmann-json3-dev libbenchmark-dev dataset-fashion-mnist)

dsd_ensure_packages() {
  local missing=()
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "dsd: installing missing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

dsd_jobs() { nproc 2>/dev/null || echo 2; }
