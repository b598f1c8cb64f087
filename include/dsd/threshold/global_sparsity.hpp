#pragma once
/// \file
/// Global sparsity: one magnitude threshold across all layers, found without copying them.

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "dsd/detail/radix_select.hpp"
#include "dsd/error.hpp"
#include "dsd/layers.hpp"
#include "dsd/threshold/cut.hpp"
#include "dsd/threshold/global_cut.hpp"
#include "dsd/threshold/kth_magnitude.hpp"
#include "dsd/threshold/policy.hpp"
#include "dsd/threshold/prune_count.hpp"

namespace dsd {

namespace detail {
/// What a global cut at `key` needs from each layer (of this process, for a sharded layer): its
/// keys below the key, equal to it, and its largest key below it (0 when none). One pass each.
struct CutTally {
  std::vector<std::uint64_t> less, equal, below;
};

template <class S>
[[nodiscard]] CutTally tally_at_key(std::span<const std::span<const S>> spans, key_type<S> key) {
  using K = key_type<S>;
  CutTally t{std::vector<std::uint64_t>(spans.size()), std::vector<std::uint64_t>(spans.size()),
             std::vector<std::uint64_t>(spans.size())};
  for (std::size_t s = 0; s < spans.size(); ++s) {
    std::uint64_t lt = 0, eq = 0;
    K top = 0;
    for (const S w : spans[s]) {
      const K k = magnitude_key(w);
      lt += k < key;
      eq += k == key;
      top = std::max(top, k < key ? k : K{0});
    }
    t.less[s] = lt, t.equal[s] = eq, t.below[s] = top;
  }
  return t;
}
}  // namespace detail

/// Prunes round(sparsity * N) of the N weights of all non-excluded layers together, the smallest
/// magnitudes first, so layers with many small weights lose more. Ties at the global threshold go
/// to earlier layers, then lower indices, so the total is exact. Layers must share a scalar type.
struct GlobalSparsity {
  double sparsity = 0.5;
  std::vector<std::string> exclude{};

  /// The cut: round(sparsity * N) weights and, on host layers, the key at which they are cut and
  /// where it falls in each layer (a backend's collection gives the counts).
  template <layer_collection C>
  [[nodiscard]] Cut cut(C& layers) const {
    detail::require_known_names(layers, exclude, "GlobalSparsity exclude");
    if constexpr (collection_space_v<C> != memory_space::host)
      return {global_prune_counts(layers, *this)};  // the backend's select, found by ADL
    else
      return host_cut(layers);
  }

  /// The cut's counts alone.
  template <layer_collection C>
  [[nodiscard]] std::vector<std::size_t> prune_counts(C& layers) const {
    return cut(layers).counts;
  }

 private:
  template <layer_collection C>
  [[nodiscard]] Cut host_cut(C& layers) const {
    using S = collection_scalar_t<C>;
    std::vector<std::span<const S>> spans;
    std::size_t total = 0;
    for_each_layer(layers, [&](auto& l, std::size_t) {
      static_assert(std::is_same_v<typename std::remove_cvref_t<decltype(l)>::scalar_type, S>,
                    "dsd: GlobalSparsity needs all layers to share one scalar type");
      const bool excluded = detail::excludes(*this, l.name());
      const std::span<const S> w = l.weights();
      spans.push_back(excluded ? w.first(0) : w);
      total += spans.back().size();
    });
    DSD_REQUIRE(total > 0, empty_tensor, "GlobalSparsity over layers with no prunable weights");
    const std::size_t k = prune_count(total, sparsity, "<global>");
    if (k == 0) return {std::vector<std::size_t>(spans.size(), 0)};
    const auto r = detail::select_magnitude<S>(spans, k - 1);
    const detail::CutTally t = detail::tally_at_key<S>(spans, r.key);
    return detail::global_cut(r.key, t.less, t.equal, t.below, k);
  }
};

}  // namespace dsd
