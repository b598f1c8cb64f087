#pragma once
/// \file
/// Where a run stands: the context every callback receives and the resumable position a
/// checkpoint records.

#include <cstdint>

#include "dsd/schedule/phase.hpp"

namespace dsd {

/// Where the loop stands, handed to every callback.
struct EpochContext {
  Phase phase = Phase::dense;
  int round = 1;
  int epoch = 0;         ///< 0-based within the phase
  int global_epoch = 0;  ///< 0-based over the whole run
  double lr = 0.0;      ///< learning rate for this epoch (already passed to Callbacks::set_lr)
  int phase_index = 0;  ///< index into the plan's phases
  int phase_epochs = 0;  ///< units of this phase: epochs, or step chunks (`Plan::units`)
  std::int64_t steps = 0;  ///< steps of this unit in a step-length phase; 0 in an epoch-length one
};

/// A point of the plan: before unit (epoch, or step chunk) `epoch` of phase `phase_index`.
/// A checkpoint records the position to continue from; `run` resumes there.
struct Position {
  int phase_index = 0;
  int epoch = 0;

  /// The position right after the epoch described by `ctx`.
  [[nodiscard]] static Position after(const EpochContext& ctx) noexcept {
    return ctx.epoch + 1 < ctx.phase_epochs ? Position{ctx.phase_index, ctx.epoch + 1}
                                            : Position{ctx.phase_index + 1, 0};
  }
  friend bool operator==(Position, Position) = default;
};

}  // namespace dsd
