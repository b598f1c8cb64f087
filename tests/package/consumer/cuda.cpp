// dsd::cuda outside the dsd tree: its target carries the CUDA runtime's headers and library
// (host code; runs without a GPU).
#include <cuda_runtime_api.h>

#include <cstdio>

int main() {
  int version = 0;
  const bool ok = cudaRuntimeGetVersion(&version) == cudaSuccess && version > 0;
  std::printf("%s\n", ok ? "cuda component OK" : "cuda component FAILED");
  return ok ? 0 : 1;
}
