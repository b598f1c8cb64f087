#pragma once
/// \file
/// The D -> S -> D schedule: the short way to build the common plan (phase lengths, learning
/// rates, rounds, fused and from-scratch modes).

#include <cmath>
#include <limits>
#include <optional>

#include "dsd/error.hpp"
#include "dsd/schedule/phase.hpp"
#include "dsd/schedule/plan.hpp"

namespace dsd {

/// Epoch counts and learning rates of a DSD run.
///
/// Round 1 trains `dense_epochs` dense at `lr`, prunes, trains `sparse_epochs` sparse at
/// `lr * sparse_lr_scale`, removes the mask and trains `redense_epochs` at
/// `lr * redense_lr_scale`. Each further round prunes again and repeats S and D with the learning
/// rate scaled by `redense_lr_scale` once more (the paper's second ResNet-50 round). The paper's
/// ImageNet protocol continues a converged model with the sparse phase below the dense rate
/// (GoogLeNet: dense at 1e-2, sparse at 1e-3, re-dense at 1e-4, i.e. `sparse_lr_scale = 0.1`,
/// `redense_lr_scale = 0.01`, `dense_epochs = 0` after loading the dense model). `prune_at_epoch = E` fuses D and S: pruning happens after E dense epochs and
/// the sparse phase absorbs the remaining dense epochs (E = 0 is sparse-from-scratch). With
/// `prune = false` the same phases run without masks: the equal-epoch dense baseline, including
/// its learning-rate drop.
struct Schedule {
  int dense_epochs = 0;
  int sparse_epochs = 0;
  int redense_epochs = 0;
  double lr = 0.01;
  double redense_lr_scale = 0.1;
  double sparse_lr_scale = 1.0;  ///< sparse phase at lr * this (times the round's scale)
  int rounds = 1;
  std::optional<int> prune_at_epoch{};  ///< fused D+S: prune after this many dense epochs
  bool prune = true;                    ///< false: dense baseline with the same phases and lrs
  /// The last round ends after its sparse phase: no final re-dense, the masks stay (a sparse
  /// model to deploy). `redense_epochs` still applies to the re-dense phases of earlier rounds.
  bool end_sparse = false;

  /// Throws `dsd::error` (invalid_schedule) naming the first inconsistent field.
  void validate() const {
    DSD_REQUIRE(dense_epochs >= 0 && sparse_epochs >= 0 && redense_epochs >= 0, invalid_schedule,
                "epoch counts must be >= 0 (got dense ", dense_epochs, ", sparse ", sparse_epochs,
                ", re-dense ", redense_epochs, ")");
    const long long total = static_cast<long long>(dense_epochs) +
                            static_cast<long long>(rounds) * (static_cast<long long>(sparse_epochs) +
                                                              redense_epochs) -
                            (end_sparse ? redense_epochs : 0);
    DSD_REQUIRE(rounds >= 1, invalid_schedule, "rounds ", rounds, " must be >= 1");
    DSD_REQUIRE(total <= std::numeric_limits<int>::max(), invalid_schedule, "the schedule's ",
                total, " epochs exceed ", std::numeric_limits<int>::max());
    DSD_REQUIRE(total > 0, invalid_schedule, "the schedule has no epochs to train");
    DSD_REQUIRE(std::isfinite(lr) && lr > 0.0, invalid_schedule, "lr ", lr,
                " must be finite and > 0");
    DSD_REQUIRE(std::isfinite(redense_lr_scale) && redense_lr_scale > 0.0, invalid_schedule,
                "redense_lr_scale ", redense_lr_scale, " must be finite and > 0");
    DSD_REQUIRE(std::isfinite(sparse_lr_scale) && sparse_lr_scale > 0.0, invalid_schedule,
                "sparse_lr_scale ", sparse_lr_scale, " must be finite and > 0");
    if (prune_at_epoch)
      DSD_REQUIRE(*prune_at_epoch >= 0 && *prune_at_epoch <= dense_epochs, invalid_schedule,
                  "prune_at_epoch ", *prune_at_epoch,
                  " is outside [0, dense_epochs = ", dense_epochs, "]");
  }

  /// Total epochs over all phases and rounds.
  [[nodiscard]] int total_epochs() const noexcept {
    return static_cast<int>(static_cast<long long>(dense_epochs) +
                            static_cast<long long>(rounds) *
                                (static_cast<long long>(sparse_epochs) + redense_epochs) -
                            (end_sparse ? redense_epochs : 0));
  }

  /// The plan: its phases in order, each prune at the run's thresholds. Phases of zero epochs
  /// are kept so their prune/re-dense still happens (a re-dense phase of 0 epochs still removes
  /// the masks: set `end_sparse` to keep them).
  [[nodiscard]] Plan plan() const {
    validate();
    const int dense = prune_at_epoch.value_or(dense_epochs);
    Plan p;
    const auto add = [&](Phase phase, int round, int epochs, double rate, bool prune_before,
                         bool redense_before) {
      PhasePlan ph;
      ph.phase = phase, ph.round = round, ph.epochs = epochs, ph.lr = rate;
      ph.prune_before = prune_before, ph.redense_before = redense_before;
      p.phases.push_back(ph);
    };
    if (dense > 0) add(Phase::dense, 1, dense, lr, false, false);
    double scale = 1.0;
    for (int r = 1; r <= rounds; ++r) {
      const int sparse = sparse_epochs + (r == 1 ? dense_epochs - dense : 0);
      const Phase s = prune ? Phase::sparse : Phase::dense;
      const Phase d = prune ? Phase::redense : Phase::dense;
      add(s, r, sparse, lr * scale * sparse_lr_scale, prune, false);
      scale *= redense_lr_scale;
      if (end_sparse && r == rounds) break;
      add(d, r, redense_epochs, lr * scale, false, prune);
    }
    return p;
  }
};

}  // namespace dsd
