#pragma once
/// \file
/// Where a run stands: the context every callback receives and the resumable position a
/// checkpoint records.

#include "dsd/schedule/schedule.hpp"

namespace dsd {

/// Where the loop stands, handed to every callback.
struct EpochContext {
  Phase phase = Phase::dense;
  int round = 1;
  int epoch = 0;         ///< 0-based within the phase
  int global_epoch = 0;  ///< 0-based over the whole run
  double lr = 0.0;      ///< learning rate for this epoch (already passed to Callbacks::set_lr)
  int phase_index = 0;  ///< index into `Schedule::plan()`
  int phase_epochs = 0;  ///< epochs of this phase
};

/// A point of the schedule: before epoch `epoch` of phase `phase_index` of `Schedule::plan()`.
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
