#pragma once
/// \file
/// Per-layer sparsity: a value per layer name.

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "dsd/layers.hpp"
#include "dsd/threshold/sparsity_by_name.hpp"

namespace dsd {

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

  /// The names this policy refers to: those given a sparsity.
  [[nodiscard]] std::vector<std::string> names() const {
    std::vector<std::string> listed;
    for (const auto& entry : sparsity) listed.push_back(entry.first);
    return listed;
  }

  template <layer_collection C>
  [[nodiscard]] std::vector<std::size_t> prune_counts(C& layers) const {
    return detail::prune_counts_by_name(layers, *this, "LayerSparsity",
                                        [](const auto& l, std::size_t) { return l.size(); });
  }
};

}  // namespace dsd
