#pragma once
/// \file
/// `Plan`: a run as an explicit list of phases, each with its own length (epochs or steps),
/// learning rate, in-phase decay and, for a prune, its own threshold policy.

#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "dsd/error.hpp"
#include "dsd/schedule/phase.hpp"
#include "dsd/threshold/global_sparsity.hpp"
#include "dsd/threshold/layer_sparsity.hpp"
#include "dsd/threshold/uniform_sparsity.hpp"

namespace dsd {

/// How a phase's rate falls within the phase ("decayed as in normal training"), evaluated once per
/// epoch (or per step chunk) `e` of the phase's `n`, 0-based: the rate of unit e is
/// - `constant`: lr
/// - `step`: lr · gamma^floor(e / every)
/// - `exponential`: lr · gamma^e
/// - `cosine`: lr · (f + (1 − f) · (1 + cos(π e / n)) / 2), f = `final_scale`
/// - `polynomial`: lr · (f + (1 − f) · (1 − e / n)^power)
/// so the first unit always trains at the phase's lr.
struct Decay {
  enum class Kind { constant, step, exponential, cosine, polynomial };
  Kind kind = Kind::constant;
  double gamma = 0.1;        ///< step, exponential: the factor
  int every = 1;             ///< step: units between two factors
  double power = 1.0;        ///< polynomial
  double final_scale = 0.0;  ///< cosine, polynomial: the fraction of lr the decay tends to

  /// The rate of unit `e` of `n` for a phase at `lr`.
  [[nodiscard]] double rate(double lr, int e, int n) const {
    const double x = n > 0 ? static_cast<double>(e) / static_cast<double>(n) : 0.0;
    switch (kind) {
      case Kind::constant:
        return lr;
      case Kind::step:
        // NOLINTNEXTLINE(bugprone-integer-division): floor(e / every) whole steps, as intended
        return lr * std::pow(gamma, static_cast<double>(e / every));
      case Kind::exponential:
        return lr * std::pow(gamma, static_cast<double>(e));
      case Kind::cosine:
        return lr * (final_scale + (1.0 - final_scale) * (1.0 + std::cos(std::numbers::pi * x)) / 2.0);
      case Kind::polynomial:
        return lr * (final_scale + (1.0 - final_scale) * std::pow(1.0 - x, power));
    }
    return lr;
  }

  /// Throws `invalid_schedule` naming `where` and the first bad field.
  void validate(const std::string& where) const {
    DSD_REQUIRE(kind >= Kind::constant && kind <= Kind::polynomial, invalid_schedule, where,
                ": unknown decay kind ", static_cast<int>(kind));
    if (kind == Kind::step || kind == Kind::exponential)
      DSD_REQUIRE(std::isfinite(gamma) && gamma > 0.0 && gamma <= 1.0, invalid_schedule, where,
                  ": decay gamma ", gamma, " is outside (0, 1]");
    if (kind == Kind::step)
      DSD_REQUIRE(every >= 1, invalid_schedule, where, ": decay every ", every, " must be >= 1");
    if (kind == Kind::cosine || kind == Kind::polynomial)
      DSD_REQUIRE(std::isfinite(final_scale) && final_scale >= 0.0 && final_scale <= 1.0,
                  invalid_schedule, where, ": decay final_scale ", final_scale,
                  " is outside [0, 1]");
    if (kind == Kind::polynomial)
      DSD_REQUIRE(std::isfinite(power) && power > 0.0, invalid_schedule, where, ": decay power ",
                  power, " must be finite and > 0");
  }
};

/// The name of a decay kind, as recipe files and reports spell it.
constexpr std::string_view to_string(Decay::Kind k) noexcept {
  switch (k) {
    case Decay::Kind::constant:
      return "constant";
    case Decay::Kind::step:
      return "step";
    case Decay::Kind::exponential:
      return "exponential";
    case Decay::Kind::cosine:
      return "cosine";
    case Decay::Kind::polynomial:
      return "polynomial";
  }
  return "?";
}

/// The threshold policy of one phase's prune: the run's own (`std::monostate`), or one of the
/// policies every path (host, CUDA, `dist::run`) prunes with, so that round 2 can prune at 25 %
/// where round 1 pruned at 50 %, or by layer where it was global.
using PhaseThresholds = std::variant<std::monostate, UniformSparsity, LayerSparsity, GlobalSparsity>;

/// One phase of a plan: what runs, how long, at which rate, and what happens before it.
struct PhasePlan {
  Phase phase = Phase::dense;
  int round = 1;               ///< DSD round (1-based), for reports
  int epochs = 0;              ///< length in epochs (the user's `train_epoch`), or
  std::int64_t steps = 0;      ///< length in steps (the user's `train_steps`): exclusive with epochs
  double lr = 0.0;             ///< the rate of the phase's first unit
  Decay decay{};               ///< how the rate falls within the phase
  bool prune_before = false;   ///< prune before the phase's first unit
  bool redense_before = false; ///< remove every mask before the phase's first unit
  PhaseThresholds thresholds{};  ///< the prune's threshold policy (monostate: the run's)
};

/// A run as phases in order. A phase given in steps trains in units of at most `steps_per_epoch`
/// steps (an epoch of the user's data): `train_steps(ctx, n)` is called for each unit, followed
/// by `evaluate`, and a unit is where progress lines, `after_epoch` and resume positions fall. A
/// 1.25-epoch phase of a 100-step epoch is units of 100 and 25 steps. A plan may start from a
/// trained or pruned model (no leading dense phase, or a first phase that is sparse without
/// `prune_before`) and may end sparse (no final re-dense).
struct Plan {
  std::vector<PhasePlan> phases;
  std::int64_t steps_per_epoch = 0;  ///< the unit of step-length phases; required when any has steps

  /// Units (epochs, or step chunks) of phase `i`.
  [[nodiscard]] int units(std::size_t i) const {
    const PhasePlan& p = phases.at(i);
    if (p.steps == 0) return p.epochs;
    return static_cast<int>(p.steps / steps_per_epoch + (p.steps % steps_per_epoch != 0));
  }

  /// Steps of unit `e` of phase `i` (0 for an epoch-length phase).
  [[nodiscard]] std::int64_t steps_of(std::size_t i, int e) const {
    const PhasePlan& p = phases.at(i);
    if (p.steps == 0) return 0;
    const std::int64_t done = static_cast<std::int64_t>(e) * steps_per_epoch;
    return std::min(steps_per_epoch, p.steps - done);
  }

  /// Units over all phases.
  [[nodiscard]] int total_units() const {
    long long total = 0;
    for (std::size_t i = 0; i < phases.size(); ++i) total += units(i);
    return static_cast<int>(total);
  }

  /// Throws `invalid_schedule` naming the phase and field of the first problem.
  void validate() const {
    DSD_REQUIRE(!phases.empty(), invalid_schedule, "the plan has no phases");
    DSD_REQUIRE(steps_per_epoch >= 0, invalid_schedule, "steps_per_epoch ", steps_per_epoch,
                " must be >= 0");
    long long total = 0;
    for (std::size_t i = 0; i < phases.size(); ++i) {
      const PhasePlan& p = phases[i];
      const std::string where = "phase " + std::to_string(i) + " (" + std::string(to_string(p.phase)) + ")";
      DSD_REQUIRE(p.phase >= Phase::dense && p.phase <= Phase::redense, invalid_schedule, where,
                  ": unknown phase kind ", static_cast<int>(p.phase));
      DSD_REQUIRE(p.round >= 1, invalid_schedule, where, ": round ", p.round, " must be >= 1");
      DSD_REQUIRE(p.epochs >= 0 && p.steps >= 0, invalid_schedule, where, ": epochs ", p.epochs,
                  " and steps ", p.steps, " must be >= 0");
      DSD_REQUIRE(p.epochs == 0 || p.steps == 0, invalid_schedule, where, ": a length in epochs (",
                  p.epochs, ") or in steps (", p.steps, "), not both");
      DSD_REQUIRE(p.steps == 0 || steps_per_epoch > 0, invalid_schedule, where, ": a length of ",
                  p.steps, " steps needs the plan's steps_per_epoch");
      DSD_REQUIRE(std::isfinite(p.lr) && p.lr > 0.0, invalid_schedule, where, ": lr ", p.lr,
                  " must be finite and > 0");
      DSD_REQUIRE(!(p.prune_before && p.redense_before), invalid_schedule, where,
                  ": prunes and re-denses before it; a phase does one");
      DSD_REQUIRE(std::holds_alternative<std::monostate>(p.thresholds) || p.prune_before,
                  invalid_schedule, where, ": has a threshold policy but does not prune");
      p.decay.validate(where);
      if (p.steps > 0)
        DSD_REQUIRE(p.steps / steps_per_epoch < std::numeric_limits<int>::max(), invalid_schedule,
                    where, ": ", p.steps, " steps are too many units of ", steps_per_epoch);
      total += units(i);
    }
    DSD_REQUIRE(total <= std::numeric_limits<int>::max(), invalid_schedule, "the plan's ", total,
                " units exceed ", std::numeric_limits<int>::max());
    DSD_REQUIRE(total > 0, invalid_schedule, "the plan has no epochs or steps to train");
  }
};

}  // namespace dsd
