#pragma once
/// \file
/// `DeviceBitMask`: a mask in device memory with `BitMask`'s bit layout (bit i % 64 of word
/// i / 64, tail bits zero), so moving it to or from the host is one copy and checkpoints of device
/// layers are byte-identical to those of host layers.

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "dsd/backend/cuda/device_buffer.cuh"
#include "dsd/backend/cuda/launch.cuh"
#include "dsd/mask.hpp"

namespace dsd::cuda {

namespace kernels {
/// All words kept (or all pruned), the tail bits of the last word zero.
// A template only so that a header-only kernel has one definition across translation units.
template <int = 0>
__global__ void fill_words(std::uint64_t* words, std::size_t n, bool kept) {
  const std::size_t count = (n + 63) / 64;
  for (std::size_t i = global_thread(); i < count; i += global_threads()) {
    const std::uint64_t all = (i + 1 < count || n % 64 == 0) ? ~std::uint64_t{0}
                                                             : (std::uint64_t{1} << (n % 64)) - 1;
    words[i] = kept ? all : 0;
  }
}
/// Adds popcount(a[i] ^ b[i]) (or popcount(a[i]) when b is null) over all words to *out.
// A template only so that a header-only kernel has one definition across translation units.
template <int = 0>
__global__ void popcount_words(const std::uint64_t* a, const std::uint64_t* b,
                                      std::size_t count, unsigned long long* out) {
  unsigned long long c = 0;
  for (std::size_t i = global_thread(); i < count; i += global_threads())
    c += static_cast<unsigned long long>(__popcll(b ? a[i] ^ b[i] : a[i]));
  for (int offset = 16; offset > 0; offset /= 2) c += __shfl_down_sync(0xffffffffu, c, offset);
  if ((threadIdx.x & 31) == 0 && c != 0) atomicAdd(out, c);
}
}  // namespace kernels

/// A bit-packed mask in device memory (1 = kept), queued on one stream.
class DeviceBitMask {
 public:
  DeviceBitMask() = default;
  /// `n` entries, all kept (or all pruned).
  DeviceBitMask(std::size_t n, bool kept, cudaStream_t stream = nullptr)
      : words_((n + 63) / 64), size_(n), stream_(stream) {
    fill(kept);
  }
  /// The device copy of a host mask.
  explicit DeviceBitMask(const BitMask& host, cudaStream_t stream = nullptr)
      : words_(host.words()), size_(host.size()), stream_(stream) {}

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t word_count() const noexcept { return words_.size(); }
  /// Device pointer to the words, for kernels.
  [[nodiscard]] const std::uint64_t* words() const noexcept { return words_.data(); }
  [[nodiscard]] std::uint64_t* words() noexcept { return words_.data(); }
  [[nodiscard]] cudaStream_t stream() const noexcept { return stream_; }

  void fill(bool kept) {
    if (size_ == 0) return;
    kernels::fill_words<><<<grid_for(word_count()), block_size, 0, stream_>>>(words_.data(), size_, kept);
    DSD_CUDA_CHECK(cudaGetLastError());
  }
  /// Number of kept entries (waits for the stream).
  [[nodiscard]] std::size_t count() const { return popcount(nullptr); }
  /// The same mask in host memory (one copy).
  [[nodiscard]] BitMask to_host() const {
    return BitMask::from_words(words_.download(stream_), size_);
  }
  /// Entries where the two masks differ (waits for the stream).
  friend std::size_t changed_entries(const DeviceBitMask& a, const DeviceBitMask& b) {
    DSD_REQUIRE(a.size_ == b.size_, size_mismatch, "comparing device masks of ", a.size_, " and ",
                b.size_, " entries");
    return a.popcount(b.words_.data());
  }
  /// Fraction of pruned entries (0 for an empty mask).
  friend double sparsity(const DeviceBitMask& m) {
    return m.size_ == 0 ? 0.0 : 1.0 - static_cast<double>(m.count()) / static_cast<double>(m.size_);
  }

 private:
  [[nodiscard]] std::size_t popcount(const std::uint64_t* other) const {
    if (size_ == 0) return 0;
    DeviceBuffer<unsigned long long> out(1);
    out.zero(stream_);
    kernels::popcount_words<><<<grid_for(word_count()), block_size, 0, stream_>>>(
        words_.data(), other, word_count(), out.data());
    DSD_CUDA_CHECK(cudaGetLastError());
    return static_cast<std::size_t>(out.download(stream_)[0]);
  }

  DeviceBuffer<std::uint64_t> words_;
  std::size_t size_ = 0;
  cudaStream_t stream_ = nullptr;
};

}  // namespace dsd::cuda
