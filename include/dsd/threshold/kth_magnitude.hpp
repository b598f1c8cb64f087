#pragma once
/// \file
/// O(n) k-th smallest magnitude, per tensor or across several tensors without copying them.

#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include "dsd/detail/radix_select.hpp"
#include "dsd/error.hpp"
#include "dsd/tensor.hpp"

namespace dsd {

namespace detail {
/// Radix select of the key of 0-based `rank` among the magnitudes of all `segments`, with the
/// count of smaller keys. The segments' data pointers are read once, outside the passes.
template <floating_scalar S>
SelectResult<key_type<S>> select_magnitude(std::span<const std::span<const S>> segments,
                                           std::size_t rank) {
  std::vector<std::size_t> sizes;
  std::vector<const S*> data;
  sizes.reserve(segments.size());
  data.reserve(segments.size());
  for (auto seg : segments) sizes.push_back(seg.size()), data.push_back(seg.data());
  const S* const* ptrs = data.data();
  return radix_select<key_type<S>>(
      sizes, [ptrs](std::size_t s, std::size_t i) noexcept { return magnitude_key(ptrs[s][i]); },
      rank);
}
}  // namespace detail

/// The `k`-th smallest |w| (1-based: k = 1 is the minimum) of the concatenation of `segments`,
/// found by radix select in two passes over float data (four over double), never by sorting.
/// Equals `std::nth_element` on the magnitudes at position k - 1. NaN magnitudes rank above +Inf.
template <floating_scalar S>
[[nodiscard]] S kth_magnitude(std::span<const std::span<const S>> segments, std::size_t k) {
  std::size_t total = 0;
  for (auto seg : segments) total += seg.size();
  DSD_REQUIRE(total > 0, empty_tensor, "kth_magnitude of an empty tensor");
  DSD_REQUIRE(k >= 1 && k <= total, invalid_argument, "kth_magnitude: k = ", k, " is outside [1, ",
              total, "]");
  return detail::magnitude_from_key<S>(detail::select_magnitude<S>(segments, k - 1).key);
}

/// The `k`-th smallest |w| (1-based) of one tensor.
template <floating_scalar S>
[[nodiscard]] S kth_magnitude(std::span<const S> w, std::size_t k) {
  const std::span<const S> one[] = {w};
  return kth_magnitude<S>(std::span<const std::span<const S>>(one), k);
}

/// The `k`-th smallest |w| (1-based) of any readable tensor.
template <readable_tensor T>
[[nodiscard]] scalar_t<T> kth_magnitude(const T& w, std::size_t k) {
  return kth_magnitude<scalar_t<T>>(as_const_span(w), k);
}

}  // namespace dsd
