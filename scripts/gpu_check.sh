#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU: runs the CUDA backend's tests against the CPU
# implementation (again under compute-sanitizer's memcheck where it is installed), then the GPU
# benchmarks, and writes every log and the benchmarks' JSON under $OUT (default build/gpu-check).
# Finishes in a few minutes on an H100.
#
#   scripts/gpu_check.sh              configure build/gpu for this machine's card and build first
#   scripts/gpu_check.sh DIR          use binaries prebuilt by scripts/gpu_prebuild.sh (DIR holds
#                                     test_cuda, dsd_bench_cuda, fashion_mlp_cuda, the shared
#                                     libraries they need and, in DIR/data, Fashion-MNIST)
# Then it trains fashion_mlp_cuda as docs/results.md trains fashion_mlp on the CPU (LeNet-300-100,
# epochs 4,4,4, sparsity 0.5, lr 0.01, seeds 1-5, four modes): logs and one CSV under $OUT.
# GPU_CHECK_PARTS (default "tests bench train") picks the parts, e.g. GPU_CHECK_PARTS=tests.
set -uo pipefail
cd "$(dirname "$0")/.."
parts=" ${GPU_CHECK_PARTS:-tests bench train} "
want() { [[ "$parts" == *" $1 "* ]]; }
out="${OUT:-build/gpu-check}"
mkdir -p "$out"
status=0
step() { echo "== $*"; }

{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv
  nvcc --version | tail -2; } >"$out/device.txt" 2>&1
cat "$out/device.txt"

if [ $# -ge 1 ]; then
  bin="$1"
  # cuSPARSE and cuBLAS come from the machine's CUDA toolkit; the rest travels with the binaries.
  export LD_LIBRARY_PATH="$bin:/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
  step "configure and build for this card"
  cmake -S . -B build/gpu -DCMAKE_BUILD_TYPE=Release -DDSD_BUILD_TESTS=ON -DDSD_BUILD_BENCH=ON \
        -DDSD_BUILD_EXAMPLES=OFF -DDSD_BUILD_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=native >"$out/build.log" 2>&1 &&
    cmake --build build/gpu -j "$(nproc)" --target test_cuda dsd_bench_cuda >>"$out/build.log" 2>&1 ||
    { echo "build failed:"; tail -30 "$out/build.log"; exit 1; }
  mkdir -p build/gpu/bin
  cmake --build build/gpu -j "$(nproc)" --target fashion_mlp_cuda >>"$out/build.log" 2>&1 || true
  cp build/gpu/tests/cuda/test_cuda build/gpu/bench/dsd_bench_cuda build/gpu/bin/
  cp build/gpu/examples/fashion_mlp_cuda build/gpu/bin/ 2>/dev/null || true
  bin=build/gpu/bin
fi
if ldd "$bin/test_cuda" | grep -q "not found"; then  # a toolkit laid out elsewhere, or pip's wheels
  extra=$(find / -xdev \( -name 'libcusparse.so.12' -o -name 'libcublas.so.13' -o -name 'libcublasLt.so.13' \) \
            2>/dev/null | xargs -r -n1 dirname | sort -u | paste -sd:)
  export LD_LIBRARY_PATH="$extra:$LD_LIBRARY_PATH"
fi
ldd "$bin/test_cuda" | grep -E "cusparse|cublas|cudart" >>"$out/device.txt"

if want tests; then
step "GPU tests (against the CPU implementation)"
"$bin/test_cuda" --duration=true 2>&1 | tee "$out/test_cuda.log"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || { echo "test_cuda failed (exit $rc)"; status=1; }
if [ -x "$bin/test_nccl" ]; then  # dsd::dist's NCCL adapter, one rank on GPU 0
  step "NCCL adapter (one rank)"
  "$bin/test_nccl" 2>&1 | tee "$out/test_nccl.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "test_nccl failed"; status=1; }
fi

if command -v compute-sanitizer >/dev/null; then
  step "GPU tests under compute-sanitizer memcheck (the 8.6 GB selection case left out)"
  timeout 240 compute-sanitizer --tool memcheck --error-exitcode 3 "$bin/test_cuda" \
      --test-case-exclude='selection past*' >"$out/memcheck.log" 2>&1
  rc=$?
  tail -5 "$out/memcheck.log"
  [ "$rc" -eq 0 ] || { echo "memcheck failed (exit $rc)"; status=1; }
fi
fi

if want bench; then
step "GPU benchmarks"
"$bin/dsd_bench_cuda" --benchmark_min_time=0.2 --benchmark_out="$out/bench_cuda.json" \
    --benchmark_out_format=json 2>&1 | tee "$out/bench_cuda.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "dsd_bench_cuda failed"; status=1; }
fi

data="$bin/data"
[ -d "$data" ] || data=/usr/share/datasets/fashion-mnist
if want train && [ -x "$bin/fashion_mlp_cuda" ] && [ -f "$data/train-images-idx3-ubyte.gz" ]; then
  step "GPU trainer: fashion_mlp_cuda, 5 seeds x 4 modes (as docs/results.md on the CPU)"
  echo "seed,mode,phase,round,epoch,lr,train_loss,validation_accuracy,test_accuracy,sparsity,seconds" >"$out/train.csv"
  : >"$out/train.log"
  for seed in 1 2 3 4 5; do
    for mode in dense dsd random-cut sparse-scratch; do
      "$bin/fashion_mlp_cuda" --data "$data" --mode "$mode" --seed "$seed" --epochs 4,4,4 \
          --sparsity 0.5 --lr 0.01 --csv "$out/run.csv" >>"$out/train.log" 2>&1 ||
        { echo "fashion_mlp_cuda --mode $mode --seed $seed failed"; status=1; continue; }
      tail -n +2 "$out/run.csv" | sed "s/^/$seed,/" >>"$out/train.csv"
      echo "seed $seed $mode: $(grep '^final test accuracy' "$out/train.log" | tail -1)"
    done
  done
  rm -f "$out/run.csv"
fi

echo "gpu_check: $([ $status -eq 0 ] && echo PASS || echo FAIL), results in $out"
exit $status
