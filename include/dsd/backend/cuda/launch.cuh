#pragma once
/// \file
/// Launch geometry shared by the CUDA backend's element-wise kernels.

#include <cstddef>

namespace dsd::cuda {

inline constexpr unsigned block_size = 256;

/// Blocks for a grid-stride loop over `n` items: enough to fill the device, at least one.
inline unsigned grid_for(std::size_t n) {
  const std::size_t blocks = (n + block_size - 1) / block_size;
  constexpr std::size_t cap = 132 * 16;  // 16 resident blocks per SM of an H100 is plenty
  return static_cast<unsigned>(blocks == 0 ? 1 : (blocks < cap ? blocks : cap));
}

__device__ inline std::size_t global_thread() {
  return blockIdx.x * std::size_t{blockDim.x} + threadIdx.x;
}
__device__ inline std::size_t global_threads() { return std::size_t{gridDim.x} * blockDim.x; }

}  // namespace dsd::cuda
