#!/usr/bin/env bash
# Sourced by the other scripts: installs the Debian packages dsd needs, only those missing.
# Needs root (or sudo) only when something is actually missing.

# Build: oneDNN's CMake config (dnnl-config.cmake) asks for OpenCL, which libdnnl-dev does not
# pull in, hence the two OpenCL development packages.
dsd_packages=(cmake make g++ pkg-config libeigen3-dev libdnnl-dev ocl-icd-opencl-dev
              opencl-c-headers doctest-dev zlib1g-dev libcli11-dev nlohmann-json3-dev
              libbenchmark-dev dataset-fashion-mnist)
# Tests only: Python with numpy, for the checkpoint cross-check with the `safetensors` reader;
# `locales` for the de_DE source that localedef compiles for the decimal-comma test; `chromium`,
# the browser that renders the HTML report headless (tests/cli/report_browser.py).
dsd_test_packages=(python3 python3-venv python3-numpy locales chromium)
# The libtorch adapter (dsd::torch), its tests, example and benchmark: Debian's libtorch (CPU);
# its TorchScript test wraps torchvision models that Debian's python3-torch exports at test time.
dsd_torch_packages=(libtorch-dev python3-torch python3-torchvision)
# Distributed pruning (dsd::dist) and its tests under mpiexec: Open MPI.
dsd_dist_packages=(libopenmpi-dev openmpi-bin)

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

# Makes a virtual environment at $1 on Debian's python3 (seeing its numpy) with PyPI's
# `safetensors` in it, unless one is there already; prints the interpreter's path.
dsd_python_reader() {
  local venv
  venv=$(realpath -m "$1")  # absolute: CMake rejects a relative Python3_EXECUTABLE
  if ! "$venv/bin/python3" -c 'import numpy, safetensors' 2>/dev/null; then
    /usr/bin/python3 -m venv --system-site-packages "$venv" >&2
    "$venv/bin/python3" -m pip install -q --disable-pip-version-check safetensors >&2
  fi
  echo "$venv/bin/python3"
}

dsd_jobs() { nproc 2>/dev/null || echo 2; }
