#pragma once
// Finiteness of weights at prune time: one check and one message for the CPU, CUDA and
// distributed prunes.

#include <atomic>
#include <cmath>
#include <cstddef>
#include <span>
#include <string_view>

#include "dsd/detail/parallel.hpp"
#include "dsd/error.hpp"

namespace dsd::detail {

/// The error for a NaN/Inf weight met at prune time (shared by the CPU and GPU backends).
[[noreturn]] inline void throw_non_finite(std::string_view layer, double value, std::size_t index) {
  throw_error(errc::non_finite, "layer \"", layer, "\" has a non-finite weight (", value,
              ") at index ", index, "; cannot prune it by magnitude");
}

/// Index of the first NaN/Inf of `w`, or `w.size()` when all are finite. Large spans are checked
/// by several threads; the index is the first one whatever their number.
template <class S>
std::size_t first_non_finite(std::span<const S> w) {
  std::atomic<bool> finite{true};
  parallel_chunks(w.size(), parallel_threshold, [&](std::size_t b, std::size_t e) noexcept {
    bool chunk_finite = true;  // a branch-free reduction
    for (std::size_t i = b; i < e; ++i) chunk_finite &= std::isfinite(w[i]);
    if (!chunk_finite) finite.store(false, std::memory_order_relaxed);
  });
  if (finite.load(std::memory_order_relaxed)) return w.size();
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
