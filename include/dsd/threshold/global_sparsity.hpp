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

  template <layer_collection C>
  [[nodiscard]] std::vector<std::size_t> prune_counts(C& layers) const {
    detail::require_known_names(layers, exclude, "GlobalSparsity exclude");
    if constexpr (collection_space_v<C> != memory_space::host)
      return global_prune_counts(layers, *this);  // the backend's select, found by ADL
    else
      return host_prune_counts(layers);
  }

 private:
  template <layer_collection C>
  [[nodiscard]] std::vector<std::size_t> host_prune_counts(C& layers) const {
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
    std::vector<std::size_t> counts(spans.size(), 0);
    if (k == 0) return counts;
    const auto r = detail::select_magnitude<S>(spans, k - 1);
    std::vector<std::uint64_t> less(spans.size(), 0), equal(spans.size(), 0);
    for (std::size_t s = 0; s < spans.size(); ++s)
      for (const S w : spans[s]) {
        const K key = detail::magnitude_key(w);
        less[s] += key < r.key;
        equal[s] += key == r.key;
      }
    return detail::global_cut_counts(less, equal, k);
  }
};

}  // namespace dsd
