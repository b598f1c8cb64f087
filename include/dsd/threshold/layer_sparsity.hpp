#pragma once
/// \file
/// Per-layer sparsity: one value for every layer, or a value per layer name.

#include <algorithm>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "dsd/layers.hpp"
#include "dsd/threshold/kth_magnitude.hpp"

namespace dsd {

/// The same sparsity for every layer, except the layers named in `exclude` (kept dense).
struct UniformSparsity {
  double sparsity = 0.5;
  std::vector<std::string> exclude{};

  template <layer_collection C>
  [[nodiscard]] std::vector<std::size_t> prune_counts(C& layers) const {
    detail::require_known_names(layers, exclude, "UniformSparsity exclude");
    std::vector<std::size_t> counts;
    for_each_layer(layers, [&](auto& l, std::size_t) {
      const bool excluded = std::find(exclude.begin(), exclude.end(), l.name()) != exclude.end();
      counts.push_back(prune_count(l.size(), excluded ? 0.0 : sparsity, l.name()));
    });
    return counts;
  }
};

/// A sparsity per layer name (e.g. from sensitivity analysis); layers not listed get `fallback`.
/// Every listed name must be a layer of the collection pruned (a misspelt name is an error).
struct LayerSparsity {
  std::map<std::string, double> sparsity{};
  double fallback = 0.0;

  /// The sparsity applied to the layer called `name`.
  [[nodiscard]] double of(const std::string& name) const {
    const auto it = sparsity.find(name);
    return it == sparsity.end() ? fallback : it->second;
  }

  template <layer_collection C>
  [[nodiscard]] std::vector<std::size_t> prune_counts(C& layers) const {
    std::vector<std::string> listed;
    for (const auto& entry : sparsity) listed.push_back(entry.first);
    detail::require_known_names(layers, listed, "LayerSparsity");
    std::vector<std::size_t> counts;
    for_each_layer(layers, [&](auto& l, std::size_t) {
      counts.push_back(prune_count(l.size(), of(l.name()), l.name()));
    });
    return counts;
  }
};

}  // namespace dsd
