#pragma once
/// \file
/// Pruning, enforcing and re-densing a whole collection of layers.

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "dsd/layers.hpp"
#include "dsd/pruning/keepmax_cut.hpp"
#include "dsd/pruning/prune.hpp"
#include "dsd/threshold/policy.hpp"

namespace dsd {

/// Prunes every layer: `thresholds` says how many weights each loses, `policy` which ones.
/// Returns each layer's statistics, in collection order. All or nothing: every layer is
/// validated and its mask built before any layer changes, so a NaN weight, a bad shape or a
/// policy error in any layer leaves every layer as it was. A policy keyed by layer names
/// (RandomCut) needs unique names.
template <class Policy = KeepmaxCut, layer_collection C, class Thresholds>
requires threshold_policy<Thresholds, C> std::vector<LayerStats> prune(C&& layers,
                                                                       const Thresholds& thresholds,
                                                                       const Policy& policy = {}) {
  if constexpr (requires { Policy::keyed_by_name; })
    detail::require_unique_names(layers, std::string(Policy::name) + " over a collection");
  const std::vector<std::size_t> counts = thresholds.prune_counts(layers);
  DSD_REQUIRE(counts.size() == layer_count(layers), size_mismatch, "threshold policy returned ",
              counts.size(), " prune counts for ", layer_count(layers), " layers");
  std::vector<std::function<LayerStats()>> commits;
  for_each_layer(layers, [&](auto& l, std::size_t i) {
    commits.push_back(prepare_prune(l, counts[i], policy));
  });
  std::vector<LayerStats> stats;
  for (auto& commit : commits) stats.push_back(commit());
  return stats;
}

/// W = W ⊙ Mask for every layer of the collection.
template <layer_collection C>
void enforce(C&& layers) {
  for_each_layer(layers, [](auto& l, std::size_t) { l.enforce(); });
}

/// Removes every layer's mask; pruned weights and optimizer state restart at zero.
template <layer_collection C>
void redense(C&& layers) {
  for_each_layer(layers, [](auto& l, std::size_t) { l.redense(); });
}

/// Statistics of every layer, in collection order.
template <layer_collection C>
[[nodiscard]] std::vector<LayerStats> layer_stats(C&& layers) {
  std::vector<LayerStats> stats;
  for_each_layer(layers, [&](auto& l, std::size_t) { stats.push_back(l.stats()); });
  return stats;
}

}  // namespace dsd
