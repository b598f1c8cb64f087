#pragma once
/// \file
/// Pruning, enforcing and re-densing a whole collection of layers.

#include <cstddef>
#include <vector>

#include "dsd/layers.hpp"
#include "dsd/pruning/keepmax_cut.hpp"
#include "dsd/pruning/prune.hpp"
#include "dsd/threshold/policy.hpp"

namespace dsd {

/// Prunes every layer: `thresholds` says how many weights each loses, `policy` which ones.
/// Returns each layer's statistics, in collection order.
template <class Policy = KeepmaxCut, layer_collection C, class Thresholds>
requires threshold_policy<Thresholds, C> std::vector<LayerStats> prune(C&& layers,
                                                                       const Thresholds& thresholds,
                                                                       const Policy& policy = {}) {
  const std::vector<std::size_t> counts = thresholds.prune_counts(layers);
  DSD_REQUIRE(counts.size() == layer_count(layers), size_mismatch, "threshold policy returned ",
              counts.size(), " prune counts for ", layer_count(layers), " layers");
  std::vector<LayerStats> stats;
  for_each_layer(layers, [&](auto& l, std::size_t i) {
    stats.push_back(prune_exactly(l, counts[i], policy));
  });
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
