#pragma once
/// \file
/// Pruning, enforcing and re-densing a whole collection of layers.

#include <cstddef>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "dsd/layers.hpp"
#include "dsd/pruning/keepmax_cut.hpp"
#include "dsd/pruning/prune.hpp"
#include "dsd/threshold/global_sparsity.hpp"
#include "dsd/threshold/policy.hpp"
#include "dsd/threshold/prune_count.hpp"

namespace dsd {

namespace detail {
/// A pruning policy with a fixed sparsity (N:M: `Policy::sparsity`) decides how many weights a
/// layer loses, the thresholds only which layers: those they prune at all (exclusions and zero
/// sparsities stay dense) lose that sparsity's count of their `size_of(layer, i)` weights.
template <class Policy, layer_collection C, class SizeOf>
void apply_fixed_sparsity(C& layers, std::vector<std::size_t>& counts, const SizeOf& size_of) {
  if constexpr (requires { static_cast<double>(Policy::sparsity); })
    for_each_layer(layers, [&](auto& l, std::size_t i) {
      if (counts[i] > 0) counts[i] = prune_count(size_of(l, i), Policy::sparsity, l.name());
    });
}
}  // namespace detail

/// Prunes every layer: `thresholds` says how many weights each loses, `policy` which ones.
/// Returns each layer's statistics, in collection order. All or nothing: every layer is
/// validated and its mask built before any layer changes, so a NaN weight, a bad shape or a
/// policy error in any layer leaves every layer as it was. A policy keyed by layer names
/// (RandomCut) needs unique names. A policy with a fixed sparsity (`NMCut<N, M>::sparsity`)
/// prunes every layer the thresholds would prune at that sparsity, whatever amount they ask.
/// A layer the thresholds exclude (`exclude` lists) is left untouched: its mask stays, and a NaN
/// in it blocks nothing. Two layers viewing overlapping memory are refused, naming both.
template <class Policy = KeepmaxCut, layer_collection C, class Thresholds>
requires threshold_policy<Thresholds, C> std::vector<LayerStats> prune(C&& layers,
                                                                       const Thresholds& thresholds,
                                                                       const Policy& policy = {}) {
  if constexpr (requires { Policy::keyed_by_name; })
    detail::require_unique_names(layers, std::string(Policy::name) + " over a collection");
  detail::require_disjoint_storage(layers, "prune");
  const Cut cut = detail::cut_of(thresholds, layers);
  std::vector<std::size_t> counts = cut.counts;
  detail::apply_fixed_sparsity<Policy>(layers, counts,
                                       [](const auto& l, std::size_t) { return l.size(); });
  std::vector<std::function<LayerStats()>> commits;
  commits.reserve(counts.size());
  for_each_layer(layers, [&](auto& l, std::size_t i) {
    if (detail::excludes(thresholds, l.name())) {  // excluded means untouched
      commits.push_back([&l] { return l.stats(); });
      return;
    }
    if constexpr (requires { static_cast<double>(Policy::sparsity); })
      if (counts[i] == 0) {  // a layer left dense: a fixed-sparsity policy cannot prune 0
        commits.push_back(prepare_prune(l, 0, KeepmaxCut{}));
        return;
      }
    if constexpr (std::is_same_v<Policy, KeepmaxCut> &&
                  layer_space_v<std::remove_cvref_t<decltype(l)>> == memory_space::host)
      if (!cut.at.empty()) {  // the thresholds found the cut: no second select
        commits.push_back(prepare_prune(
            l, counts[i], detail::KeepmaxAt{cut.at[i], std::is_same_v<Thresholds, GlobalSparsity>}));
        return;
      }
    commits.push_back(prepare_prune(l, counts[i], policy));
  });
  std::vector<LayerStats> stats;
  stats.reserve(commits.size());
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
