#pragma once
/// \file
/// cuBLAS and cuSPARSE as RAII handles, and status checks that name the call and the library's
/// status string in a `dsd::error(errc::backend)`.

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusparse.h>

#include "dsd/backend/cuda/error.cuh"
#include "dsd/backend/cuda/owned.cuh"

/// Throws `dsd::error(errc::backend)` naming the call and cuSPARSE's status unless it succeeds.
#define DSD_CUSPARSE_CHECK(expr) DSD_STATUS_CHECK(expr, CUSPARSE_STATUS_SUCCESS, cusparseGetErrorString)

/// Throws `dsd::error(errc::backend)` naming the call and cuBLAS's status unless it succeeds.
#define DSD_CUBLAS_CHECK(expr) DSD_STATUS_CHECK(expr, CUBLAS_STATUS_SUCCESS, cublasGetStatusString)

namespace dsd::cuda {

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

/// Binds a library handle to `stream` for a scope and gives it back its previous stream after,
/// so that a handle shared by layers on different streams (or with the caller's own calls)
/// queues each layer's library calls on that layer's stream.
template <class H, auto GetStream, auto SetStream, auto Check>
class StreamScope {
 public:
  StreamScope(H h, cudaStream_t stream) : h_(h) {
    Check(GetStream(h_, &previous_), "get the stream of");
    if (previous_ == stream) return;
    Check(SetStream(h_, stream), "set the stream of");
    rebound_ = true;
  }
  StreamScope(const StreamScope&) = delete;
  StreamScope& operator=(const StreamScope&) = delete;
  ~StreamScope() {
    if (rebound_) SetStream(h_, previous_);  // it was accepted once: a failure cannot be reported
  }

 private:
  H h_;
  cudaStream_t previous_ = nullptr;
  bool rebound_ = false;
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

namespace detail {
/// A cuSPARSE handle's calls queued on a given stream for a scope.
using CusparseStreamScope =
    StreamScope<cusparseHandle_t, cusparseGetStream, cusparseSetStream, check_cusparse>;
/// A cuBLAS handle's calls queued on a given stream for a scope. (Rebinding makes cuBLAS drop a
/// workspace set with `cublasSetWorkspace` for its default pool.)
using CublasStreamScope =
    StreamScope<cublasHandle_t, cublasGetStream, cublasSetStream, check_cublas>;
}  // namespace detail

}  // namespace dsd::cuda
