#pragma once
/// \file
/// Eigen::Tensor and Eigen::TensorMap as dsd parameter tensors (unsupported/Eigen/CXX11/Tensor).

#include <cstddef>
#include <unsupported/Eigen/CXX11/Tensor>

#include "dsd/tensor.hpp"

namespace dsd {

namespace detail {
// Storage-order shape of a rank-R tensor: row-major keeps the last dimension contiguous,
// column-major (Eigen's default) the first.
template <class E>
Shape eigen_tensor_shape(const E& t) noexcept {
  constexpr int rank = E::NumIndices;
  if constexpr (rank == 0) {
    return Shape{1, 1};
  } else {
    const bool row_major = static_cast<int>(E::Layout) == static_cast<int>(Eigen::RowMajor);
    const auto inner = static_cast<std::size_t>(t.dimension(row_major ? rank - 1 : 0));
    const auto n = static_cast<std::size_t>(t.size());
    return inner == 0 ? Shape{0, 0} : Shape{n / inner, inner};
  }
}
}  // namespace detail

template <class S, int R, int O, class I>
struct tensor_traits<Eigen::Tensor<S, R, O, I>> {
  using T = Eigen::Tensor<S, R, O, I>;
  using scalar_type = S;
  static S* data(T& t) noexcept { return t.data(); }
  static const S* data(const T& t) noexcept { return t.data(); }
  static std::size_t size(const T& t) noexcept { return static_cast<std::size_t>(t.size()); }
  static Shape shape(const T& t) noexcept { return detail::eigen_tensor_shape(t); }
  static constexpr bool is_view = false;
};

/// A TensorMap views storage the caller owns; a map of const data is readable only.
template <class P, int O, template <class> class MP>
struct tensor_traits<Eigen::TensorMap<P, O, MP>> {
  using T = Eigen::TensorMap<P, O, MP>;
  using scalar_type = std::remove_const_t<typename T::Scalar>;
  static auto* data(const T& t) noexcept { return const_cast<T&>(t).data(); }
  static std::size_t size(const T& t) noexcept { return static_cast<std::size_t>(t.size()); }
  static Shape shape(const T& t) noexcept { return detail::eigen_tensor_shape(t); }
  static constexpr bool is_view = true;
};

}  // namespace dsd
