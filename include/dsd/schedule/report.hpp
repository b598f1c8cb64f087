#pragma once
/// \file
/// What a DSD run reports: accuracy, per-layer sparsity and threshold, and time, per phase.

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "dsd/detail/text.hpp"
#include "dsd/masked.hpp"
#include "dsd/schedule/phase.hpp"

namespace dsd {

/// A layer in a phase report: its statistics during the phase, and what opened the phase did
/// to its mask.
struct LayerReport : LayerStats {
  std::size_t changed = 0;  ///< mask entries flipped by the phase's prune or re-dense
};

/// One phase of a finished run.
struct PhaseReport {
  Phase phase = Phase::dense;
  int round = 1;
  int epochs = 0;            ///< length in epochs, or
  double lr = 0.0;           ///< the rate of the phase's first unit
  double accuracy_start = 0.0;      ///< `evaluate()` before the first epoch (right after pruning)
  double accuracy_end = 0.0;        ///< `evaluate()` after the last epoch
  double seconds = 0.0;             ///< wall time of the phase's epochs and evaluations
  std::vector<LayerReport> layers;  ///< per-layer sparsity and threshold during the phase
  /// Fraction of the weights exactly zero at the end of the phase, counted from the weights (for
  /// device layers, which `run` does not read, from the masks: `sparsity_measured` is false).
  double weight_sparsity = 0.0;
  bool sparsity_measured = true;
  /// Pruned positions found nonzero after a sparse epoch and zeroed by `run` (summed over the
  /// phase's epochs): nonzero means the optimizer does not keep the mask itself.
  std::uint64_t unmasked = 0;
  std::int64_t steps = 0;  ///< length in steps (a phase given in steps; `epochs` is then 0)
};

/// A whole run: every phase in order.
struct Report {
  std::vector<PhaseReport> phases;

  /// Accuracy after the last phase.
  [[nodiscard]] double final_accuracy() const {
    return phases.empty() ? 0.0 : phases.back().accuracy_end;
  }
};

/// Prints the per-phase table, then each phase's per-layer sparsity and threshold.
inline void print_report(std::ostream& os, const Report& report) {
  os << detail::format("%-9s %5s %6s %10s %9s %9s %8s %8s\n", "phase", "round", "epochs", "lr",
                       "acc@start", "acc@end", "sparsity", "seconds");
  for (const auto& p : report.phases) {
    const double sp = p.weight_sparsity;  // from the weights, not the masks
    const std::string length =
        p.steps > 0 ? detail::format("%ds", p.steps) : detail::format("%d", p.epochs);
    os << detail::format("%-9s %5d %6s %10.3g %9.4f %9.4f %8.4f %8.2f\n",
                         std::string(to_string(p.phase)).c_str(), p.round, length.c_str(), p.lr,
                         p.accuracy_start, p.accuracy_end, sp, p.seconds);
  }
  for (const auto& p : report.phases) {
    if (p.phase == Phase::dense) continue;
    os << detail::format("layers in the %s phase of round %d:\n", to_string(p.phase), p.round);
    for (const auto& l : p.layers)
      os << detail::format(
          "  %-16s %10zu weights %10zu kept  sparsity %.4f  threshold %-10.6g changed %zu\n",
          l.name.c_str(), l.size, l.kept, l.sparsity, l.threshold, l.changed);
  }
}

}  // namespace dsd
