#pragma once
/// \file
/// Sensitivity analysis: prune one layer at a time at increasing sparsity and measure the drop.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <exception>
#include <functional>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "dsd/detail/text.hpp"
#include "dsd/error.hpp"
#include "dsd/layers.hpp"
#include "dsd/pruning/keepmax_cut.hpp"
#include "dsd/pruning/prune.hpp"
#include "dsd/snapshot.hpp"
#include "dsd/threshold/layer_sparsity.hpp"

namespace dsd {

/// Accuracy of the model with one layer pruned to one sparsity (all other layers untouched).
struct SensitivityPoint {
  std::string layer;
  double sparsity = 0.0;
  double accuracy = 0.0;
};

/// The result of `sensitivity_analysis`: the unpruned accuracy and one point per (layer, sparsity).
struct SensitivityTable {
  double baseline = 0.0;
  std::vector<SensitivityPoint> points;

  /// Per layer, the largest candidate sparsity whose accuracy drop, and that of every smaller
  /// candidate, is at most `max_drop` (so one noisy point cannot skip past a bad one); 0 if none.
  [[nodiscard]] LayerSparsity choose(double max_drop) const {
    DSD_REQUIRE(max_drop >= 0.0 && std::isfinite(max_drop), invalid_argument, "max_drop ", max_drop,
                " must be finite and >= 0");
    LayerSparsity chosen;
    std::vector<std::string> blocked;
    for (const auto& p : points) {  // points are grouped by layer in increasing sparsity
      if (!chosen.sparsity.count(p.layer)) chosen.sparsity[p.layer] = 0.0;
      if (std::find(blocked.begin(), blocked.end(), p.layer) != blocked.end()) continue;
      if (baseline - p.accuracy <= max_drop)
        chosen.sparsity[p.layer] = p.sparsity;
      else
        blocked.push_back(p.layer);
    }
    return chosen;
  }

  /// Writes `layer,sparsity,accuracy,drop` rows (with a header).
  void write_csv(std::ostream& os) const {
    os << "layer,sparsity,accuracy,drop\n";
    for (const auto& p : points)
      os << p.layer << ',' << detail::to_text(p.sparsity) << ',' << detail::to_text(p.accuracy)
         << ',' << detail::to_text(baseline - p.accuracy) << '\n';
  }
};

/// For each layer and each candidate sparsity (increasing, in [0, 1)), prunes that layer alone
/// with `policy`, calls `evaluate()`, and restores the layer exactly (weights, mask, state).
template <class Policy = KeepmaxCut, layer_collection C, class Evaluate>
SensitivityTable sensitivity_analysis(C&& layers, std::span<const double> sparsities,
                                      Evaluate&& evaluate, const Policy& policy = {}) {
  DSD_REQUIRE(!sparsities.empty(), invalid_argument,
              "sensitivity_analysis: no candidate sparsities");
  for (std::size_t i = 0; i < sparsities.size(); ++i) {
    (void)prune_count(1, sparsities[i]);  // validates the range
    DSD_REQUIRE(i == 0 || sparsities[i] > sparsities[i - 1], invalid_argument,
                "sensitivity_analysis: candidate sparsities must increase (", sparsities[i - 1],
                " then ", sparsities[i], ")");
  }
  SensitivityTable table{static_cast<double>(evaluate()), {}};
  for_each_layer(layers, [&](auto& layer, std::size_t) {
    // Weights, mask, state and threshold; put back after each probe, and on every exit path (an
    // exception from evaluate() or the policy leaves the layer as it was).
    const auto saved = snapshot(layer);
    struct Restore {
      std::remove_reference_t<decltype(layer)>& l;
      const decltype(saved)& s;
      int pending = std::uncaught_exceptions();
      ~Restore() {
        if (std::uncaught_exceptions() == pending) return;  // the loop restored already
        try {
          restore(l, s);
        } catch (...) {  // the exception in flight is the one to report
        }
      }
    } guard{layer, saved};
    for (double s : sparsities) {
      prune(layer, s, policy);
      table.points.push_back({layer.name(), s, static_cast<double>(evaluate())});
      restore(layer, saved);
    }
  });
  return table;
}

}  // namespace dsd
