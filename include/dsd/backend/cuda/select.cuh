#pragma once
/// \file
/// Device-wide Keepmax-Cut: magnitude keys sorted with CUB's radix sort (stable, O(n) per pass),
/// so the first k (key, index) pairs are exactly the weights the CPU KeepmaxCut prunes, ties
/// included (lower index first). Also device memory as an RAII value.

#include <cuda_runtime.h>
#include <cub/device/device_radix_sort.cuh>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "dsd/backend/cuda/error.cuh"
#include "dsd/backend/cuda/masked_update.cuh"

namespace dsd::cuda {

/// An owning device array of `T`; copies are deep, moves are cheap.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t n) : n_(n) {
    if (n_ > 0) DSD_CUDA_CHECK(cudaMalloc(&p_, n_ * sizeof(T)));
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  DeviceBuffer(const DeviceBuffer& o) : DeviceBuffer(o.n_) {
    if (n_ > 0) DSD_CUDA_CHECK(cudaMemcpy(p_, o.p_, n_ * sizeof(T), cudaMemcpyDeviceToDevice));
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  ~DeviceBuffer() {
    if (p_) cudaFree(p_);
  }
  [[nodiscard]] T* data() noexcept { return p_; }
  [[nodiscard]] const T* data() const noexcept { return p_; }
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  void upload(const std::vector<T>& host) {
    DSD_REQUIRE(host.size() == n_, size_mismatch, "upload of ", host.size(),
                " elements into a device buffer of ", n_);
    if (n_ > 0) DSD_CUDA_CHECK(cudaMemcpy(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  [[nodiscard]] std::vector<T> download() const {
    std::vector<T> host(n_);
    if (n_ > 0) DSD_CUDA_CHECK(cudaMemcpy(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

namespace kernels {
__global__ inline void magnitude_keys(const float* w, std::uint32_t* keys, std::uint32_t* idx,
                                      std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x) {
    keys[i] = __float_as_uint(w[i]) & 0x7fffffffu;
    idx[i] = static_cast<std::uint32_t>(i);
  }
}
__global__ inline void fill_words(std::uint64_t* words, std::size_t n) {
  const std::size_t count = (n + 63) / 64;
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < count;
       i += std::size_t{gridDim.x} * blockDim.x)
    words[i] =
        (i + 1 < count || n % 64 == 0) ? ~std::uint64_t{0} : (std::uint64_t{1} << (n % 64)) - 1;
}
__global__ inline void clear_bits(std::uint64_t* words, const std::uint32_t* idx, std::size_t k) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < k;
       i += std::size_t{gridDim.x} * blockDim.x)
    atomicAnd(reinterpret_cast<unsigned long long*>(words + (idx[i] >> 6)),
              ~(1ull << (idx[i] & 63)));
}
}  // namespace kernels

/// Keepmax-Cut on the device: prunes the `k` smallest |w| of `n` floats (ties: lower index
/// first), writing `(n + 63) / 64` BitMask words. Returns the k-th smallest magnitude (0 if k = 0).
inline float keepmax_mask(const float* w, std::size_t n, std::size_t k, std::uint64_t* words,
                          Stream s = {}) {
  DSD_REQUIRE(k <= n, invalid_argument, "cuda::keepmax_mask: cannot prune ", k, " of ", n,
              " weights");
  DSD_REQUIRE(n < (std::size_t{1} << 32), invalid_argument, "cuda::keepmax_mask: ", n,
              " weights exceed 32-bit indices");
  if (n == 0) return 0.0f;
  kernels::fill_words<<<detail::grid_for((n + 63) / 64), 256, 0, s.stream>>>(words, n);
  DSD_CUDA_CHECK(cudaGetLastError());
  if (k == 0) return 0.0f;
  DeviceBuffer<std::uint32_t> keys(n), keys_sorted(n), idx(n), idx_sorted(n);
  kernels::magnitude_keys<<<detail::grid_for(n), 256, 0, s.stream>>>(w, keys.data(), idx.data(), n);
  DSD_CUDA_CHECK(cudaGetLastError());
  std::size_t temp_bytes = 0;
  DSD_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys.data(),
                                                 keys_sorted.data(), idx.data(), idx_sorted.data(),
                                                 static_cast<int>(n), 0, 31, s.stream));
  DeviceBuffer<unsigned char> temp(temp_bytes);
  DSD_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.data(), temp_bytes, keys.data(),
                                                 keys_sorted.data(), idx.data(), idx_sorted.data(),
                                                 static_cast<int>(n), 0, 31, s.stream));
  kernels::clear_bits<<<detail::grid_for(k), 256, 0, s.stream>>>(words, idx_sorted.data(), k);
  DSD_CUDA_CHECK(cudaGetLastError());
  std::uint32_t kth = 0;
  DSD_CUDA_CHECK(cudaMemcpyAsync(&kth, keys_sorted.data() + (k - 1), sizeof kth,
                                 cudaMemcpyDeviceToHost, s.stream));
  DSD_CUDA_CHECK(cudaStreamSynchronize(s.stream));
  float out;
  std::memcpy(&out, &kth, sizeof out);
  return out;
}

}  // namespace dsd::cuda
