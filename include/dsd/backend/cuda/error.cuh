#pragma once
/// \file
/// CUDA status checks that keep file, line and the runtime's message, and the device probe.

#include <cuda_runtime.h>

#include "dsd/error.hpp"

/// Throws `dsd::error(errc::backend)` with file, line, the call and the library's message unless
/// the status `expr` returns equals `ok`; `describe` turns a status into text.
#define DSD_STATUS_CHECK(expr, ok, describe)                                                 \
  do {                                                                                       \
    const auto dsd_status_ = (expr);                                                         \
    if (dsd_status_ != (ok))                                                                 \
      ::dsd::detail::throw_error(::dsd::errc::backend, __FILE__, ":", __LINE__, ": ", #expr, \
                                 " failed: ", describe(dsd_status_));                        \
  } while (false)

/// Throws `dsd::error(errc::backend)` with file, line and CUDA's message unless `expr` succeeds.
#define DSD_CUDA_CHECK(expr) DSD_STATUS_CHECK(expr, cudaSuccess, cudaGetErrorString)

namespace dsd::cuda {

/// Number of usable CUDA devices (0 when there is no GPU or no driver).
inline int device_count() noexcept {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

/// Throws `dsd::error(errc::no_device)` unless a CUDA device is usable.
inline void require_device() {
  int n = 0;
  const cudaError_t s = cudaGetDeviceCount(&n);
  DSD_REQUIRE(s == cudaSuccess && n > 0, no_device, "no usable CUDA device (",
              s == cudaSuccess ? "none found" : cudaGetErrorString(s), ")");
}

}  // namespace dsd::cuda
