#pragma once
/// \file
/// cuBLAS and cuSPARSE as RAII handles, and status checks that name the call and the library's
/// status string in a `dsd::error(errc::backend)`.

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusparse.h>

#include <utility>

#include "dsd/backend/cuda/error.cuh"

/// Throws `dsd::error(errc::backend)` naming the call and cuSPARSE's status unless it succeeds.
#define DSD_CUSPARSE_CHECK(expr)                                                              \
  do {                                                                                        \
    const cusparseStatus_t dsd_status_ = (expr);                                              \
    if (dsd_status_ != CUSPARSE_STATUS_SUCCESS)                                               \
      ::dsd::detail::throw_error(::dsd::errc::backend, __FILE__, ":", __LINE__, ": ", #expr,  \
                                 " failed: ", cusparseGetErrorString(dsd_status_));           \
  } while (false)

/// Throws `dsd::error(errc::backend)` naming the call and cuBLAS's status unless it succeeds.
#define DSD_CUBLAS_CHECK(expr)                                                                \
  do {                                                                                        \
    const cublasStatus_t dsd_status_ = (expr);                                                \
    if (dsd_status_ != CUBLAS_STATUS_SUCCESS)                                                 \
      ::dsd::detail::throw_error(::dsd::errc::backend, __FILE__, ":", __LINE__, ": ", #expr,  \
                                 " failed: ", cublasGetStatusString(dsd_status_));            \
  } while (false)

namespace dsd::cuda {

namespace detail {
/// A library handle or descriptor owned by value: `Destroy` runs once, on the last owner.
template <class H, auto Destroy>
class Owned {
 public:
  Owned() = default;
  explicit Owned(H h) noexcept : h_(h) {}
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  Owned(Owned&& o) noexcept : h_(std::exchange(o.h_, H{})) {}
  Owned& operator=(Owned&& o) noexcept {
    std::swap(h_, o.h_);
    return *this;
  }
  ~Owned() {
    if (h_) Destroy(h_);
  }
  [[nodiscard]] H get() const noexcept { return h_; }
  explicit operator bool() const noexcept { return h_ != H{}; }

 private:
  H h_{};
};
}  // namespace detail

/// A cuSPARSE handle bound to a stream.
class CusparseHandle {
 public:
  explicit CusparseHandle(cudaStream_t stream = nullptr) {
    require_device();
    cusparseHandle_t h = nullptr;
    DSD_CUSPARSE_CHECK(cusparseCreate(&h));
    h_ = Owned(h);
    DSD_CUSPARSE_CHECK(cusparseSetStream(h, stream));
  }
  [[nodiscard]] cusparseHandle_t get() const noexcept { return h_.get(); }

 private:
  using Owned = detail::Owned<cusparseHandle_t, cusparseDestroy>;
  Owned h_;
};

/// A cuBLAS handle bound to a stream.
class CublasHandle {
 public:
  explicit CublasHandle(cudaStream_t stream = nullptr) {
    require_device();
    cublasHandle_t h = nullptr;
    DSD_CUBLAS_CHECK(cublasCreate(&h));
    h_ = Owned(h);
    DSD_CUBLAS_CHECK(cublasSetStream(h, stream));
  }
  [[nodiscard]] cublasHandle_t get() const noexcept { return h_.get(); }

 private:
  using Owned = detail::Owned<cublasHandle_t, cublasDestroy>;
  Owned h_;
};

}  // namespace dsd::cuda
