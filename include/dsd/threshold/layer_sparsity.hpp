#pragma once
/// \file
/// Per-layer sparsity: a value per layer name.

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "dsd/layers.hpp"
#include "dsd/threshold/policy.hpp"
#include "dsd/threshold/sparsity_by_name.hpp"

namespace dsd {

/// A sparsity per layer name (e.g. from sensitivity analysis); layers not listed get `fallback`.
/// Layers in `exclude` are left untouched by a prune (mask, weights and state), as with the
/// other policies; a layer given sparsity 0 is pruned at 0 instead (its mask becomes all-kept).
/// Every listed name must be a layer of the collection pruned (a misspelt name is an error).
struct LayerSparsity {
  std::map<std::string, double> sparsity{};
  double fallback = 0.0;
  std::vector<std::string> exclude{};

  /// The sparsity applied to the layer called `name`: 0 if it is excluded.
  [[nodiscard]] double of(const std::string& name) const {
    if (detail::excludes(*this, name)) return 0.0;
    const auto it = sparsity.find(name);
    return it == sparsity.end() ? fallback : it->second;
  }

  /// The names this policy refers to: those given a sparsity, and those excluded.
  [[nodiscard]] std::vector<std::string> names() const {
    std::vector<std::string> listed;
    for (const auto& entry : sparsity) listed.push_back(entry.first);
    listed.insert(listed.end(), exclude.begin(), exclude.end());
    return listed;
  }

  template <layer_collection C>
  [[nodiscard]] std::vector<std::size_t> prune_counts(C& layers) const {
    return detail::prune_counts_by_name(layers, *this, "LayerSparsity",
                                        [](const auto& l, std::size_t) { return l.size(); });
  }
};

}  // namespace dsd
