#pragma once
/// \file
/// One sparsity for every layer of a collection, with named exceptions kept dense.

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "dsd/layers.hpp"
#include "dsd/threshold/prune_count.hpp"

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

}  // namespace dsd
