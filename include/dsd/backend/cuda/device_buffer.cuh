#pragma once
/// \file
/// `DeviceBuffer<T>`: an owning array in CUDA device memory, as an RAII value.

#include <cuda_runtime.h>

#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "dsd/backend/cuda/error.cuh"

namespace dsd::cuda {

/// An owning device array of `T`; copies are deep, moves are cheap. Transfers are synchronous
/// with respect to the host (they wait for the given stream).
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t n) : n_(n) {
    if (n_ > 0) DSD_CUDA_CHECK(cudaMalloc(&p_, n_ * sizeof(T)));
  }
  explicit DeviceBuffer(std::span<const T> host) : DeviceBuffer(host.size()) { upload(host); }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(std::span<const T>(host)) {}
  DeviceBuffer(const DeviceBuffer& o) : DeviceBuffer(o.n_) {
    if (n_ > 0) DSD_CUDA_CHECK(cudaMemcpy(p_, o.p_, n_ * sizeof(T), cudaMemcpyDeviceToDevice));
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  ~DeviceBuffer() {
    if (p_) cudaFree(p_);  // an error here (e.g. the context is gone at exit) cannot be reported
  }

  [[nodiscard]] T* data() noexcept { return p_; }
  [[nodiscard]] const T* data() const noexcept { return p_; }
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  [[nodiscard]] bool empty() const noexcept { return n_ == 0; }

  /// Copies `host` (exactly size() elements) to the device.
  void upload(std::span<const T> host, cudaStream_t stream = nullptr) {
    DSD_REQUIRE(host.size() == n_, size_mismatch, "upload of ", host.size(),
                " elements into a device buffer of ", n_);
    if (n_ == 0) return;
    DSD_CUDA_CHECK(cudaMemcpyAsync(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice, stream));
    DSD_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  void upload(const std::vector<T>& host, cudaStream_t stream = nullptr) {
    upload(std::span<const T>(host), stream);
  }
  /// Copies `host` into elements [offset, offset + host.size()).
  void copy_from_host(std::span<const T> host, std::size_t offset = 0, cudaStream_t stream = nullptr) {
    DSD_REQUIRE(offset <= n_ && host.size() <= n_ - offset, size_mismatch, "copy of ", host.size(),
                " elements at offset ", offset, " into a device buffer of ", n_);
    if (host.empty()) return;
    DSD_CUDA_CHECK(cudaMemcpyAsync(p_ + offset, host.data(), host.size() * sizeof(T),
                                   cudaMemcpyHostToDevice, stream));
    DSD_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  /// The elements, copied to the host.
  [[nodiscard]] std::vector<T> download(cudaStream_t stream = nullptr) const {
    std::vector<T> host(n_);
    if (n_ == 0) return host;
    DSD_CUDA_CHECK(cudaMemcpyAsync(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost, stream));
    DSD_CUDA_CHECK(cudaStreamSynchronize(stream));
    return host;
  }
  /// Sets every byte to zero, queued on `stream`.
  void zero(cudaStream_t stream = nullptr) {
    if (n_ > 0) DSD_CUDA_CHECK(cudaMemsetAsync(p_, 0, n_ * sizeof(T), stream));
  }
  /// Makes room for at least `n` elements (contents are lost when it grows; never shrinks).
  void reserve(std::size_t n) {
    if (n > n_) *this = DeviceBuffer(n);
  }

 private:
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

}  // namespace dsd::cuda
