#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU: runs the CUDA backend's tests against the CPU
# implementation (again under compute-sanitizer where it is installed: memcheck over every case
# but the two past 2^31 elements, racecheck over the "select" suite, the kernels with shared
# memory and the cross-stream selection cases; side by side, each capped at 240 s, so racecheck
# adds no wall time past memcheck's cap), then the GPU benchmarks, and writes every log, the
# benchmarks' JSON and each part's duration (timings.txt) under $OUT (default build/gpu-check).
# Target: the whole check under 6 minutes on an H200 with prebuilt binaries (timings.txt says
# where the time went).
#
#   scripts/gpu_check.sh              configure build/gpu for this machine's card and build first
#   scripts/gpu_check.sh DIR          use binaries prebuilt by scripts/gpu_prebuild.sh (DIR holds
#                                     test_cuda, dsd_bench_cuda, fashion_mlp_cuda, cuda_mlp, the
#                                     shared libraries they need and, in DIR/data, Fashion-MNIST)
# Then it runs the single-file example cuda_mlp once (6000 images, 1 epoch per phase, a few
# seconds) and trains fashion_mlp_cuda as docs/results.md trains fashion_mlp on the CPU
# (LeNet-300-100, epochs 4,4,4, sparsity 0.5, lr 0.01, seeds 1-5, four modes): logs and one CSV
# under $OUT.
# GPU_CHECK_PARTS (default "tests bench train") picks the parts, e.g. GPU_CHECK_PARTS=tests.
set -uo pipefail
cd "$(dirname "$0")/.."
parts=" ${GPU_CHECK_PARTS:-tests bench train} "
want() { [[ "$parts" == *" $1 "* ]]; }
out="${OUT:-build/gpu-check}"
mkdir -p "$out"
out=$(cd "$out" && pwd)
status=0
step() { echo "== $*"; }
: >"$out/timings.txt"
part_start=$SECONDS
timed() {  # timed NAME: the seconds since the previous call, into timings.txt
  echo "$1 $((SECONDS - part_start)) s" | tee -a "$out/timings.txt"
  part_start=$SECONDS
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv
  nvcc --version | tail -2; } >"$out/device.txt" 2>&1
cat "$out/device.txt"

if [ $# -ge 1 ]; then
  bin=$(cd "$1" && pwd)  # absolute: the sanitizer runs start in directories of their own
  # cuSPARSE and cuBLAS come from the machine's CUDA toolkit; the rest travels with the binaries.
  export LD_LIBRARY_PATH="$bin:/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
  step "configure and build for this card"
  cmake -S . -B build/gpu -DCMAKE_BUILD_TYPE=Release -DDSD_BUILD_TESTS=ON -DDSD_BUILD_BENCH=ON \
        -DDSD_BUILD_EXAMPLES=OFF -DDSD_BUILD_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=native >"$out/build.log" 2>&1 &&
    cmake --build build/gpu -j "$(nproc)" --target test_cuda dsd_bench_cuda >>"$out/build.log" 2>&1 ||
    { echo "build failed:"; tail -30 "$out/build.log"; exit 1; }
  mkdir -p build/gpu/bin
  cmake --build build/gpu -j "$(nproc)" --target fashion_mlp_cuda cuda_mlp >>"$out/build.log" 2>&1 || true
  cp build/gpu/tests/cuda/test_cuda build/gpu/bench/dsd_bench_cuda build/gpu/bin/
  cp build/gpu/experiments/fashion_mlp_cuda build/gpu/bin/ 2>/dev/null || true
  cp build/gpu/examples/cuda_mlp build/gpu/bin/ 2>/dev/null || true
  bin=build/gpu/bin
  timed build
fi
bin=$(cd "$bin" && pwd)
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

timed tests

sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
if [ -n "$sanitizer" ]; then
  # Each run in a directory of its own (the checkpoint case writes files into the working one).
  sanitize() {  # sanitize TOOL ARGS...: runs test_cuda under TOOL, log in $out/TOOL.log
    local tool=$1; shift
    mkdir -p "$out/$tool.cwd"
    (cd "$out/$tool.cwd" &&
       timeout 240 "$sanitizer" --tool "$tool" --error-exitcode 3 "$bin/test_cuda" "$@") \
      >"$out/$tool.log" 2>&1
    echo $? >"$out/$tool.rc"
  }
  step "GPU tests under compute-sanitizer: memcheck (all but the cases past 2^31 elements)" \
       "and racecheck (the select suite), side by side"
  sanitize memcheck --test-case-exclude='*past 2^31*' &
  mode=$(nvidia-smi --query-gpu=compute_mode --format=csv,noheader 2>/dev/null | head -1)
  [ "$mode" = "Default" ] || wait  # one process at a time on an exclusive GPU
  sanitize racecheck --test-suite=select &
  wait
  for tool in memcheck racecheck; do
    echo "-- $tool"
    tail -5 "$out/$tool.log"
    rc=$(cat "$out/$tool.rc")
    [ "$rc" -eq 124 ] && echo "$tool timed out after 240 s"
    [ "$rc" -eq 0 ] || { echo "$tool failed (exit $rc)"; status=1; }
  done
  timed sanitizers
else
  echo "compute-sanitizer not found: memcheck and racecheck skipped"
fi
fi

if want bench; then
step "GPU benchmarks"
"$bin/dsd_bench_cuda" --benchmark_min_time=0.2 --benchmark_out="$out/bench_cuda.json" \
    --benchmark_out_format=json 2>&1 | tee "$out/bench_cuda.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "dsd_bench_cuda failed"; status=1; }
timed bench
fi

data="$bin/data"
[ -d "$data" ] || data=/usr/share/datasets/fashion-mnist
if want train && [ -x "$bin/cuda_mlp" ] && [ -f "$data/train-images-idx3-ubyte.gz" ]; then
  step "GPU example: cuda_mlp, 6000 images, 1 epoch per phase"
  "$bin/cuda_mlp" "$data" 6000 1 2>&1 | tee "$out/cuda_mlp.log"
  rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ] || ! grep -Eq "final test accuracy: 0\.(7[5-9]|8|9)" "$out/cuda_mlp.log"; then
    echo "cuda_mlp failed (exit $rc) or trained below 0.75"; status=1
  fi
  timed example
fi
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
  timed train
fi

echo "total $SECONDS s" | tee -a "$out/timings.txt"
echo "gpu_check: $([ $status -eq 0 ] && echo PASS || echo FAIL), results in $out"
exit $status
