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
#define DSD_CUSPARSE_CHECK(expr) DSD_STATUS_CHECK(expr, CUSPARSE_STATUS_SUCCESS, cusparseGetErrorString)

/// Throws `dsd::error(errc::backend)` naming the call and cuBLAS's status unless it succeeds.
#define DSD_CUBLAS_CHECK(expr) DSD_STATUS_CHECK(expr, CUBLAS_STATUS_SUCCESS, cublasGetStatusString)

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

namespace detail {
/// A library handle created on construction (after checking for a GPU) and bound to a stream.
template <class H, auto Create, auto Destroy, auto SetStream, auto Check>
class Handle {
 public:
  explicit Handle(cudaStream_t stream = nullptr) {
    require_device();
    H h{};
    Check(Create(&h), "create");
    h_ = Owned<H, Destroy>(h);
    Check(SetStream(h, stream), "set the stream of");
  }
  [[nodiscard]] H get() const noexcept { return h_.get(); }

 private:
  Owned<H, Destroy> h_;
};
inline void check_cusparse(cusparseStatus_t s, const char* what) {
  DSD_REQUIRE(s == CUSPARSE_STATUS_SUCCESS, backend, "cannot ", what, " a cuSPARSE handle: ",
              cusparseGetErrorString(s));
}
inline void check_cublas(cublasStatus_t s, const char* what) {
  DSD_REQUIRE(s == CUBLAS_STATUS_SUCCESS, backend, "cannot ", what, " a cuBLAS handle: ",
              cublasGetStatusString(s));
}
}  // namespace detail

/// A cuSPARSE handle bound to a stream.
using CusparseHandle = detail::Handle<cusparseHandle_t, cusparseCreate, cusparseDestroy, cusparseSetStream,
                                      detail::check_cusparse>;
/// A cuBLAS handle bound to a stream.
using CublasHandle =
    detail::Handle<cublasHandle_t, cublasCreate, cublasDestroy, cublasSetStream, detail::check_cublas>;

}  // namespace dsd::cuda
