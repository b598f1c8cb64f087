#pragma once
// Finiteness of weights at prune time: one check and one message for the CPU, CUDA and
// distributed prunes.

#include <cmath>
#include <cstddef>
#include <span>
#include <string_view>

#include "dsd/error.hpp"

namespace dsd::detail {

/// The error for a NaN/Inf weight met at prune time (shared by the CPU and GPU backends).
[[noreturn]] inline void throw_non_finite(std::string_view layer, double value, std::size_t index) {
  throw_error(errc::non_finite, "layer \"", layer, "\" has a non-finite weight (", value,
              ") at index ", index, "; cannot prune it by magnitude");
}

/// Index of the first NaN/Inf of `w`, or `w.size()` when all are finite.
template <class S>
std::size_t first_non_finite(std::span<const S> w) {
  bool finite = true;  // a branch-free reduction the compiler vectorises
  for (std::size_t i = 0; i < w.size(); ++i) finite &= std::isfinite(w[i]);
  if (finite) return w.size();
  std::size_t i = 0;
  while (std::isfinite(w[i])) ++i;
  return i;
}

template <class S>
void require_finite(std::span<const S> w, std::string_view layer) {
  const std::size_t i = first_non_finite(w);
  if (i != w.size()) throw_non_finite(layer, w[i], i);
}

}  // namespace dsd::detail
