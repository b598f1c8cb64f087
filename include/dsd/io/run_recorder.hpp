#pragma once
/// \file
/// What a run looks like as it goes: the weights' histograms at every phase boundary (opening:
/// right after the phase's prune or re-dense; closing: after its last epoch) and one row per
/// epoch (loss, accuracy, lr, phase, sparsity, seconds). Attached to `Callbacks`; a run without
/// it records nothing and pays nothing.
///
/// \code
/// dsd::io::RunRecorder recorder;
/// recorder.attach(cb, layers);  // after setting cb's own hooks, which it keeps calling
/// dsd::run(layers, plan, thresholds, cb);
/// recorder.boundaries();  // D closing, S opening (the gap at zero), ..., R closing
/// \endcode

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "dsd/detail/text.hpp"
#include "dsd/io/histogram.hpp"
#include "dsd/layers.hpp"
#include "dsd/schedule/phase_loop.hpp"
#include "dsd/schedule/plan.hpp"
#include "dsd/sensitivity/analysis.hpp"
#include "dsd/sensitivity/sparsity.hpp"

namespace dsd::io {

/// The weights at one phase boundary.
struct Boundary {
  int phase_index = 0;  ///< the phase it opens or closes
  Phase phase = Phase::dense;
  int round = 1;
  bool opening = true;  ///< true: before the phase's first epoch (after its prune / re-dense)
  std::vector<WeightHistogram> layers;
};

/// One epoch (or step unit) of the run.
struct EpochRecord {
  int phase_index = 0;
  Phase phase = Phase::dense;
  int round = 1;
  int global_epoch = 0;  ///< 0-based over the run
  std::int64_t steps = 0;  ///< steps of a step unit; 0 for an epoch
  double lr = 0.0, loss = 0.0, accuracy = 0.0;
  double sparsity = 0.0;  ///< pruned fraction of the layers' positions (from the masks)
  double seconds = 0.0;   ///< before_epoch to after_epoch
};

/// One phase of a run's plan as a report lists it.
struct ScheduleRow {
  Phase phase = Phase::dense;
  int round = 1;
  int epochs = 0;          ///< length in epochs, or
  std::int64_t steps = 0;  ///< in steps
  double lr = 0.0;         ///< the rate of the phase's first unit
  std::string decay;       ///< "constant", "step 0.1 every 2", ...
  std::string before;      ///< what happens before it: "", "re-dense", "prune: uniform 0.5", ...
};

/// What a prune under the threshold policy `t` does, as a schedule row says it ("prune: 0.5 of
/// each layer", ...); a policy of the user's own is "prune: the run's thresholds".
template <class T>
[[nodiscard]] std::string prune_text(const T& t) {
  using dsd::detail::format;
  if constexpr (std::is_same_v<T, UniformSparsity>)
    return format("prune: %g of each layer", t.sparsity);
  else if constexpr (std::is_same_v<T, GlobalSparsity>)
    return format("prune: %g of all layers together", t.sparsity);
  else if constexpr (std::is_same_v<T, LayerSparsity>)
    return format("prune: per layer (%zu named, others %g)", t.sparsity.size(), t.fallback);
  else if constexpr (std::is_same_v<T, SensitivitySparsity>)
    return format("prune: per layer by sensitivity (accuracy drop at most %g)", t.max_drop);
  else
    return "prune: the run's thresholds";
}

/// The rows of `plan`, in order. A prune that uses the run's thresholds (those given to
/// `dsd::run`) is described as `run_prune` says (see `prune_text`).
[[nodiscard]] inline std::vector<ScheduleRow> schedule_rows(
    const Plan& plan, const std::string& run_prune = "prune: the run's thresholds") {
  using dsd::detail::format;
  std::vector<ScheduleRow> rows;
  for (const PhasePlan& p : plan.phases) {
    ScheduleRow r{p.phase, p.round, p.epochs, p.steps, p.lr, std::string(to_string(p.decay.kind)), {}};
    switch (p.decay.kind) {
      case Decay::Kind::constant: break;
      case Decay::Kind::step: r.decay += format(" %g every %d", p.decay.gamma, p.decay.every); break;
      case Decay::Kind::exponential: r.decay += format(" %g", p.decay.gamma); break;
      case Decay::Kind::cosine: r.decay += format(" to %g", p.decay.final_scale); break;
      case Decay::Kind::polynomial:
        r.decay += format(" power %g to %g", p.decay.power, p.decay.final_scale);
        break;
    }
    if (p.redense_before) r.before = "re-dense";
    if (p.prune_before)
      r.before = std::visit(
          [&](const auto& t) -> std::string {
            if constexpr (std::is_same_v<std::decay_t<decltype(t)>, std::monostate>)
              return run_prune;
            else
              return prune_text(t);
          },
          p.thresholds);
    rows.push_back(std::move(r));
  }
  return rows;
}

/// One run as a report draws it: what the recorder saw, the plan, and what the user adds (its
/// name, metadata, final results, a sensitivity table). Runs of one name in a report are seeds
/// of one configuration: their curves are drawn as mean ± sd.
struct RunRecord {
  std::string name;  ///< "dsd", "dense", "random-cut", ...
  std::vector<std::pair<std::string, std::string>> metadata;  ///< seed, flags, machine, version
  std::vector<ScheduleRow> schedule;
  std::vector<EpochRecord> epochs;
  std::vector<Boundary> boundaries;
  std::vector<PhaseReport> phases;  ///< per phase: per-layer sparsity and threshold
  std::optional<SensitivityTable> sensitivity;
  double max_drop = 0.0;  ///< the sensitivity analysis' accepted drop
  std::vector<std::pair<std::string, double>> results;  ///< e.g. {"test accuracy", 0.87}
};

/// Records a run's boundaries and epochs through `Callbacks`: host layers, and device layers
/// wherever their backend's `weight_histogram` overload is visible (dsd/backend/cuda.cuh).
class RunRecorder {
 public:
  explicit RunRecorder(HistogramOptions options = {}) : options_(options) {}

  /// Chains the recorder into `cb`'s before_phase, after_phase, before_epoch and after_epoch
  /// (the hooks already set are called first, as before). `layers` must outlive the run; the
  /// recorder must outlive `cb`'s use. Attach once per run: a second attach would record twice.
  template <layer_collection C>
  void attach(Callbacks& cb, C& layers) {
    const auto histograms = [this, &layers] { return weight_histograms(layers, options_); };
    const auto sparsity = [&layers] {
      std::size_t n = 0, kept = 0;
      for_each_layer(layers, [&](const auto& l, std::size_t) { n += l.size(), kept += l.mask().count(); });
      return n == 0 ? 0.0 : 1.0 - static_cast<double>(kept) / static_cast<double>(n);
    };
    cb.before_phase = [this, histograms, previous = std::move(cb.before_phase)](const EpochContext& ctx) {
      if (previous) previous(ctx);
      boundaries_.push_back({ctx.phase_index, ctx.phase, ctx.round, true, histograms()});
    };
    cb.after_phase = [this, histograms, previous = std::move(cb.after_phase)](const EpochContext& ctx,
                                                                             const PhaseReport& r) {
      if (previous) previous(ctx, r);
      boundaries_.push_back({ctx.phase_index, ctx.phase, ctx.round, false, histograms()});
      phases_.push_back(r);
    };
    cb.before_epoch = [this, previous = std::move(cb.before_epoch)](const EpochContext& ctx) {
      if (previous) previous(ctx);
      epoch_start_ = std::chrono::steady_clock::now();
    };
    cb.after_epoch = [this, sparsity, previous = std::move(cb.after_epoch)](
                         const EpochContext& ctx, double loss, double accuracy) {
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start_).count();
      if (previous) previous(ctx, loss, accuracy);
      epochs_.push_back({ctx.phase_index, ctx.phase, ctx.round, ctx.global_epoch, ctx.steps, ctx.lr,
                         loss, accuracy, sparsity(), seconds});
    };
  }

  [[nodiscard]] const std::vector<Boundary>& boundaries() const noexcept { return boundaries_; }
  [[nodiscard]] const std::vector<EpochRecord>& epochs() const noexcept { return epochs_; }
  [[nodiscard]] const std::vector<PhaseReport>& phases() const noexcept { return phases_; }

  /// What was recorded, as the run `name` of `plan` (for `write_report`); `run_thresholds`,
  /// when given, is the threshold policy passed to `dsd::run`, named in the schedule.
  [[nodiscard]] RunRecord record(std::string name, const Plan& plan) const {
    return record_with(std::move(name), schedule_rows(plan));
  }
  template <class Thresholds>
  [[nodiscard]] RunRecord record(const std::string& name, const Plan& plan, const Thresholds& run_thresholds) const {
    return record_with(name, schedule_rows(plan, prune_text(run_thresholds)));
  }

 private:
  [[nodiscard]] RunRecord record_with(std::string name, std::vector<ScheduleRow> schedule) const {
    RunRecord r;
    r.name = std::move(name);
    r.schedule = std::move(schedule);
    r.epochs = epochs_;
    r.boundaries = boundaries_;
    r.phases = phases_;
    return r;
  }

  HistogramOptions options_;
  std::vector<Boundary> boundaries_;
  std::vector<EpochRecord> epochs_;
  std::vector<PhaseReport> phases_;
  std::chrono::steady_clock::time_point epoch_start_{};
};

}  // namespace dsd::io
