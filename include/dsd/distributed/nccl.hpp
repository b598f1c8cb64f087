#pragma once
/// \file
/// The NCCL adapter of `dist::communicator`, for ranks that hold their weights on GPUs (one rank
/// per GPU). Link NCCL (`libnccl`, in the CUDA toolkit's directory; see tests/distributed/CMakeLists.txt)
/// and cudart. The concept's spans are host memory: they are staged through a device buffer on
/// the adapter's stream. `all_reduce_sum_device` reduces device memory in place, without staging.

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "dsd/backend/cuda/device_logic.hpp"
#include "dsd/distributed/communicator.hpp"
#include "dsd/error.hpp"

namespace dsd::dist {

namespace detail {
inline void nccl_check(ncclResult_t rc, const char* call) {
  DSD_REQUIRE(rc == ncclSuccess, backend, call, " failed: ", ncclGetErrorString(rc));
}
inline void cuda_check(cudaError_t rc, const char* call) {
  DSD_REQUIRE(rc == cudaSuccess, backend, call, " failed: ", cudaGetErrorString(rc));
}
}  // namespace detail

/// `communicator` over an NCCL communicator the caller created (e.g. `ncclCommInitRank` with a
/// unique id broadcast over MPI) and keeps alive; collectives run on `stream` and are waited for.
class Nccl {
 public:
  Nccl(ncclComm_t comm, cudaStream_t stream = nullptr) : comm_(comm), stream_(stream) {
    detail::nccl_check(ncclCommUserRank(comm_, &rank_), "ncclCommUserRank");
    detail::nccl_check(ncclCommCount(comm_, &size_), "ncclCommCount");
  }
  Nccl(const Nccl&) = delete;
  Nccl& operator=(const Nccl&) = delete;
  ~Nccl() {
    if (scratch_ != nullptr) cudaFree(scratch_);
  }

  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return size_; }
  void all_reduce_sum(std::span<std::uint64_t> v) { staged(v, ncclSum); }
  void all_reduce_min(std::span<std::uint64_t> v) { staged(v, ncclMin); }
  void all_reduce_max(std::span<std::uint64_t> v) { staged(v, ncclMax); }
  /// Sum over lower ranks: every rank's value gathered (8 bytes per rank), summed on the host.
  [[nodiscard]] std::uint64_t exclusive_scan_sum(std::uint64_t x) {
    std::uint64_t* d = device(static_cast<std::size_t>(size_) + 1);
    detail::cuda_check(cudaMemcpyAsync(d, &x, sizeof x, cudaMemcpyHostToDevice, stream_),
                       "cudaMemcpyAsync");
    detail::nccl_check(ncclAllGather(d, d + 1, 1, ncclUint64, comm_, stream_), "ncclAllGather");
    std::vector<std::uint64_t> all(static_cast<std::size_t>(size_));
    detail::cuda_check(cudaMemcpyAsync(all.data(), d + 1, all.size() * sizeof(std::uint64_t),
                                       cudaMemcpyDeviceToHost, stream_),
                       "cudaMemcpyAsync");
    wait();
    std::uint64_t below = 0;
    for (int r = 0; r < rank_; ++r) below += all[static_cast<std::size_t>(r)];
    return below;
  }
  void broadcast(std::span<std::byte> b, int root) {
    auto* d = reinterpret_cast<std::byte*>(device((b.size() + 7) / 8));
    detail::cuda_check(cudaMemcpyAsync(d, b.data(), b.size(), cudaMemcpyHostToDevice, stream_),
                       "cudaMemcpyAsync");
    detail::nccl_check(ncclBroadcast(d, d, b.size(), ncclUint8, root, comm_, stream_),
                       "ncclBroadcast");
    detail::cuda_check(cudaMemcpyAsync(b.data(), d, b.size(), cudaMemcpyDeviceToHost, stream_),
                       "cudaMemcpyAsync");
    wait();
  }
  void barrier() {
    std::uint64_t one[] = {1};
    staged(one, ncclSum);
  }

  /// Sums `v` (device memory, e.g. a histogram built by a kernel) over the ranks, in place, on
  /// the adapter's stream; does not wait.
  void all_reduce_sum_device(std::span<std::uint64_t> v) {
    detail::nccl_check(
        ncclAllReduce(v.data(), v.data(), v.size(), ncclUint64, ncclSum, comm_, stream_),
        "ncclAllReduce");
  }

 private:
  void staged(std::span<std::uint64_t> v, ncclRedOp_t op) {
    std::uint64_t* d = device(v.size());
    detail::cuda_check(cudaMemcpyAsync(d, v.data(), v.size_bytes(), cudaMemcpyHostToDevice, stream_),
                       "cudaMemcpyAsync");
    detail::nccl_check(ncclAllReduce(d, d, v.size(), ncclUint64, op, comm_, stream_),
                       "ncclAllReduce");
    detail::cuda_check(cudaMemcpyAsync(v.data(), d, v.size_bytes(), cudaMemcpyDeviceToHost, stream_),
                       "cudaMemcpyAsync");
    wait();
  }
  /// The staging buffer, grown to `words` if needed. Strong guarantee: when the allocation fails
  /// the old buffer and its capacity are kept, so a later, smaller request still gets it.
  std::uint64_t* device(std::size_t words) {
    DSD_REQUIRE(words <= std::numeric_limits<std::size_t>::max() / sizeof(std::uint64_t),
                invalid_argument, "NCCL staging buffer of ", words, " words");
    return dsd::detail::grow_scratch(
        scratch_, capacity_, words,
        [](std::size_t n) {
          void* p = nullptr;
          const cudaError_t rc = cudaMalloc(&p, n * sizeof(std::uint64_t));
          if (rc != cudaSuccess)
            (void)cudaGetLastError();  // so later checks do not report it again
          DSD_REQUIRE(rc == cudaSuccess, backend, "cudaMalloc of ", n * sizeof(std::uint64_t),
                      " bytes for the NCCL staging buffer failed: ", cudaGetErrorString(rc));
          return static_cast<std::uint64_t*>(p);
        },
        [](std::uint64_t* p) { detail::cuda_check(cudaFree(p), "cudaFree"); });
  }
  void wait() { detail::cuda_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }

  ncclComm_t comm_;
  cudaStream_t stream_;
  int rank_ = 0, size_ = 1;
  std::uint64_t* scratch_ = nullptr;
  std::size_t capacity_ = 0;
};

static_assert(communicator<Nccl>);

}  // namespace dsd::dist
