#pragma once
/// \file
/// `device_tensor<S>`: the view of a weight tensor in CUDA device memory, and its traits.

#include <cuda_runtime.h>

#include <cstddef>
#include <type_traits>

#include "dsd/tensor.hpp"

namespace dsd::cuda {

/// A non-owning view of `count` elements of `S` in device memory, with its storage-order shape
/// and the stream every dsd operation on it is queued on (the default stream unless given).
template <class S>
struct device_tensor {
  S* ptr = nullptr;              ///< first element, a device pointer
  std::size_t count = 0;         ///< number of elements
  Shape dims{};                  ///< storage-order shape; {1, count} when left empty
  cudaStream_t stream = nullptr;  ///< where kernels on this tensor are queued

  /// {1, count} when `dims` is left empty; else `dims` (wrapping checks it holds `count`).
  [[nodiscard]] Shape shape() const noexcept { return dims == Shape{} ? Shape{1, count} : dims; }
};

}  // namespace dsd::cuda

template <class S>
struct dsd::tensor_traits<dsd::cuda::device_tensor<S>> {
  using scalar_type = std::remove_const_t<S>;
  static S* data(const cuda::device_tensor<S>& t) noexcept { return t.ptr; }
  static std::size_t size(const cuda::device_tensor<S>& t) noexcept { return t.count; }
  static Shape shape(const cuda::device_tensor<S>& t) noexcept { return t.shape(); }
  static constexpr bool is_view = true;
  static constexpr memory_space space = memory_space::cuda;
};
