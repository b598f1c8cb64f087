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
    using K = detail::key_type<S>;
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
    std::vector<std::uint64_t> less(spans.size(), 0), equal(spans.size(), 0), below(spans.size(), 0);
    for (std::size_t s = 0; s < spans.size(); ++s) {
      std::uint64_t lt = 0, eq = 0;
      K top = 0;  // the largest key below the cut
      for (const S w : spans[s]) {
        const K key = detail::magnitude_key(w);
        lt += key < r.key;
        eq += key == r.key;
        top = std::max(top, key < r.key ? key : K{0});
      }
      less[s] = lt, equal[s] = eq, below[s] = top;
    }
    return detail::global_cut(r.key, less, equal, below, k);
  }
};

}  // namespace dsd
