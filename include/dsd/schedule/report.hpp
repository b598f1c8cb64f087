#pragma once
/// \file
/// What a DSD run reports: accuracy, per-layer sparsity and threshold, and time, per phase.

#include <ostream>
#include <string>
#include <vector>

#include "dsd/detail/text.hpp"
#include "dsd/masked.hpp"
#include "dsd/schedule/schedule.hpp"

namespace dsd {

/// One phase of a finished run.
struct PhaseReport {
  Phase phase = Phase::dense;
  int round = 1;
  int epochs = 0;
  double lr = 0.0;
  double accuracy_start = 0.0;     ///< `evaluate()` before the first epoch (right after pruning)
  double accuracy_end = 0.0;       ///< `evaluate()` after the last epoch
  double seconds = 0.0;            ///< wall time of the phase's epochs and evaluations
  std::vector<LayerStats> layers;  ///< per-layer sparsity and threshold during the phase
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
    std::size_t n = 0, kept = 0;
    for (const auto& l : p.layers) n += l.size, kept += l.kept;
    const double sp = n == 0 ? 0.0 : 1.0 - static_cast<double>(kept) / static_cast<double>(n);
    os << detail::format("%-9s %5d %6d %10.3g %9.4f %9.4f %8.4f %8.2f\n",
                         std::string(to_string(p.phase)).c_str(), p.round, p.epochs, p.lr,
                         p.accuracy_start, p.accuracy_end, sp, p.seconds);
  }
  for (const auto& p : report.phases) {
    if (p.phase == Phase::dense) continue;
    os << "layers in the " << to_string(p.phase) << " phase of round " << p.round << ":\n";
    for (const auto& l : p.layers)
      os << detail::format(
          "  %-16s %10zu weights %10zu kept  sparsity %.4f  threshold %-10.6g changed %zu\n",
          l.name.c_str(), l.size, l.kept, l.sparsity, l.threshold, l.changed);
  }
}

}  // namespace dsd
