#pragma once
/// \file
/// Eigen dense matrices, arrays and maps as dsd parameter tensors.

#include <Eigen/Core>
#include <cstddef>

#include "dsd/tensor.hpp"

namespace dsd {

namespace detail {
template <class E>
struct eigen_dense_traits {
  using scalar_type = typename E::Scalar;
  static_assert(E::InnerStrideAtCompileTime == 1 || E::InnerStrideAtCompileTime == Eigen::Dynamic,
                "dsd: an Eigen parameter must be contiguous (inner stride 1)");
  template <class U>
  static auto* data(U& t) noexcept {
    return t.data();
  }
  static std::size_t size(const E& t) noexcept { return static_cast<std::size_t>(t.size()); }
  /// Column-major storage runs down the columns: `outer` = cols, `inner` = rows.
  static Shape shape(const E& t) noexcept {
    const auto r = static_cast<std::size_t>(t.rows()), c = static_cast<std::size_t>(t.cols());
    return E::IsRowMajor ? Shape{r, c} : Shape{c, r};
  }
};
}  // namespace detail

template <class S, int R, int C, int O, int MR, int MC>
struct tensor_traits<Eigen::Matrix<S, R, C, O, MR, MC>>
    : detail::eigen_dense_traits<Eigen::Matrix<S, R, C, O, MR, MC>> {
  static constexpr bool is_view = false;
};

template <class S, int R, int C, int O, int MR, int MC>
struct tensor_traits<Eigen::Array<S, R, C, O, MR, MC>>
    : detail::eigen_dense_traits<Eigen::Array<S, R, C, O, MR, MC>> {
  static constexpr bool is_view = false;
};

/// `Eigen::Map` over contiguous storage (default stride). A const map is readable only.
template <class P, int Options>
struct tensor_traits<Eigen::Map<P, Options, Eigen::Stride<0, 0>>>
    : detail::eigen_dense_traits<Eigen::Map<P, Options, Eigen::Stride<0, 0>>> {
  static constexpr bool is_view = true;
  using Base = detail::eigen_dense_traits<Eigen::Map<P, Options, Eigen::Stride<0, 0>>>;
  // A Map's data() is usable through a const handle: constness is the map's, not the data's.
  static auto* data(const Eigen::Map<P, Options, Eigen::Stride<0, 0>>& t) noexcept {
    return const_cast<Eigen::Map<P, Options, Eigen::Stride<0, 0>>&>(t).data();
  }
};

}  // namespace dsd
