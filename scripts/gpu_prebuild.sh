#!/usr/bin/env bash
# Builds the GPU tests, benchmarks and trainers here (no GPU needed) for a Hopper card (sm_90)
# and gathers them with the shared libraries a bare GPU machine may lack into build/gpu-carry,
# for `scripts/gpu_check.sh build/gpu-carry` there. Usage: scripts/gpu_prebuild.sh [cuda-archs]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
dsd_ensure_packages "${dsd_packages[@]}"
cmake -S . -B build/gpu -DCMAKE_BUILD_TYPE=Release -DDSD_BUILD_TESTS=ON -DDSD_BUILD_BENCH=ON \
      -DDSD_BUILD_EXAMPLES=ON -DDSD_BUILD_EXPERIMENTS=ON -DDSD_BUILD_CUDA=ON -DDSD_WERROR=ON \
      -DCMAKE_CUDA_ARCHITECTURES="${1:-90}" >/dev/null
cmake --build build/gpu -j "$(dsd_jobs)" --target test_cuda dsd_bench_cuda fashion_mlp_cuda cuda_mlp
# The NCCL adapter's test when NCCL and MPI were found (libnccl itself is not carried: 300 MB;
# the GPU machine's CUDA directory has it).
cmake --build build/gpu -j "$(dsd_jobs)" --target test_nccl 2>/dev/null || true
rm -rf build/gpu-carry && mkdir -p build/gpu-carry/data
cp build/gpu/tests/cuda/test_cuda build/gpu/bench/dsd_bench_cuda build/gpu/experiments/fashion_mlp_cuda \
   build/gpu/examples/cuda_mlp build/gpu-carry/
[ -x build/gpu/tests/distributed/test_nccl ] && cp build/gpu/tests/distributed/test_nccl build/gpu-carry/
cp /usr/share/datasets/fashion-mnist/*.gz build/gpu-carry/data/
for lib in libbenchmark.so.1debian libcudart.so.13 libgomp.so.1 libz.so.1; do
  path=$(ldd build/gpu-carry/dsd_bench_cuda build/gpu-carry/test_cuda build/gpu-carry/fashion_mlp_cuda build/gpu-carry/cuda_mlp | awk -v l="$lib" '$1 == l {print $3; exit}')
  [ -n "$path" ] && cp -L "$path" build/gpu-carry/
done
ls -la build/gpu-carry
