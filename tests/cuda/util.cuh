#pragma once
// Helpers shared by the GPU test files: device copies of host weights wrapped as layers, owned
// non-blocking streams, and a device-side delay that keeps a stream busy so that work queued
// behind it is certainly still pending when the host moves on (what makes a missing cross-stream
// ordering show up as a wrong result rather than by luck).
#include <cuda_runtime.h>

#include <cstdint>
#include <dsd/backend/cuda.cuh>
#include <dsd/dsd.hpp>
#include <string>
#include <utility>
#include <vector>

namespace dsd_test {

inline const bool has_device = dsd::cuda::device_count() > 0;

template <class S>
using DLayer = dsd::cuda::DeviceMasked<S>;

inline std::vector<std::uint64_t> words_of(const dsd::BitMask& m) {
  return {m.words().begin(), m.words().end()};
}

/// A device copy of `host` and a layer wrapping it, its kernels queued on `stream`.
template <class S>
struct DeviceWeights {
  dsd::cuda::DeviceBuffer<S> buf;
  DLayer<S> layer;
  DeviceWeights(const std::vector<S>& host, std::string name, dsd::Shape shape = {},
                cudaStream_t stream = nullptr)
      : buf(host),
        layer(dsd::cuda::device_tensor<S>{buf.data(), host.size(), shape, stream},
              std::move(name)) {}
};

/// A stream created with cudaStreamNonBlocking: it never waits for the legacy default stream,
/// so only explicit ordering (events) orders it against other streams.
class NonBlockingStream {
 public:
  NonBlockingStream() { DSD_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  NonBlockingStream(const NonBlockingStream&) = delete;
  NonBlockingStream& operator=(const NonBlockingStream&) = delete;
  ~NonBlockingStream() { cudaStreamDestroy(s_); }
  operator cudaStream_t() const noexcept { return s_; }  // NOLINT: used as a stream

 private:
  cudaStream_t s_ = nullptr;
};

namespace kernels {
template <int = 0>
__global__ void spin(unsigned long long ns) {
  unsigned long long start = 0, now = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (now - start < ns);
}
}  // namespace kernels

/// Keeps `stream` busy for `ms` milliseconds of device time.
inline void delay(cudaStream_t stream, double ms) {
  kernels::spin<><<<1, 1, 0, stream>>>(static_cast<unsigned long long>(ms * 1e6));
  DSD_CUDA_CHECK(cudaGetLastError());
}

/// Overwrites `dst` with `src` (n elements, device memory) on `stream` after `ms` of delay there:
/// a write that is still pending when the call returns.
template <class S>
void late_copy(S* dst, const S* src, std::size_t n, cudaStream_t stream, double ms = 20) {
  delay(stream, ms);
  DSD_CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(S), cudaMemcpyDeviceToDevice, stream));
}

}  // namespace dsd_test
