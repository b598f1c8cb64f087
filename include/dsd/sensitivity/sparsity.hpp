#pragma once
/// \file
/// Threshold policy: per-layer sparsities chosen by sensitivity analysis at prune time.

#include <cstddef>
#include <functional>
#include <span>
#include <vector>

#include "dsd/error.hpp"
#include "dsd/layers.hpp"
#include "dsd/sensitivity/analysis.hpp"

namespace dsd {

/// Threshold policy that runs `sensitivity_analysis` (Keepmax-Cut) on the layers at prune time,
/// i.e. on the trained dense model, and prunes each layer at the sparsity `choose(max_drop)` picks.
struct SensitivitySparsity {
  std::vector<double> candidates{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
  double max_drop = 0.01;              ///< acceptable accuracy drop per layer
  std::function<double()> evaluate{};  ///< held-out accuracy of the current model
  std::function<void(const SensitivityTable&)>
      on_table{};  ///< receives the table (to print or save)

  template <layer_collection C>
  [[nodiscard]] std::vector<std::size_t> prune_counts(C& layers) const {
    DSD_REQUIRE(static_cast<bool>(evaluate), invalid_argument,
                "SensitivitySparsity::evaluate is not set");
    const SensitivityTable table =
        sensitivity_analysis(layers, std::span<const double>(candidates), evaluate);
    if (on_table) on_table(table);
    return table.choose(max_drop).prune_counts(layers);
  }
};

}  // namespace dsd
