#pragma once
/// \file
/// One sparsity for every layer of a collection, with named exceptions kept dense.

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "dsd/layers.hpp"
#include "dsd/threshold/policy.hpp"
#include "dsd/threshold/sparsity_by_name.hpp"

namespace dsd {

/// The same sparsity for every layer, except the layers named in `exclude` (kept dense).
struct UniformSparsity {
  double sparsity = 0.5;
  std::vector<std::string> exclude{};

  /// The sparsity of the layer called `name`: 0 if it is excluded.
  [[nodiscard]] double of(const std::string& name) const {
    return detail::excludes(*this, name) ? 0.0 : sparsity;
  }
  /// The names this policy refers to: `exclude`.
  [[nodiscard]] std::vector<std::string> names() const { return exclude; }

  template <layer_collection C>
  [[nodiscard]] std::vector<std::size_t> prune_counts(C& layers) const {
    return detail::prune_counts_by_name(layers, *this, "UniformSparsity exclude",
                                        [](const auto& l, std::size_t) { return l.size(); });
  }
};

}  // namespace dsd
