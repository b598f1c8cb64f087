#pragma once
/// \file
/// The generic D -> S -> D loop around the user's own `train_epoch` and `evaluate`.

#include <algorithm>
#include <any>
#include <chrono>
#include <cstdint>
#include <functional>
#include <ostream>
#include <type_traits>
#include <variant>
#include <vector>

#include "dsd/detail/text.hpp"
#include "dsd/error.hpp"
#include "dsd/layers.hpp"
#include "dsd/pruning/keepmax_cut.hpp"
#include "dsd/pruning/prune_layers.hpp"
#include "dsd/schedule/position.hpp"
#include "dsd/schedule/plan.hpp"
#include "dsd/schedule/report.hpp"
#include "dsd/schedule/schedule.hpp"
#include "dsd/threshold/policy.hpp"
#include "dsd/threshold/sparsity_by_name.hpp"

namespace dsd {

namespace detail {
template <class O>
concept has_lr = requires(O& o) { o.lr = 0.0; };
}  // namespace detail

/// For `Callbacks::set_lr`: writes the schedule's rate into the `lr` of each optimizer given
/// (dsd's, or any object with a `double lr` member); they must outlive the run.
template <class... Optimizers>
  requires(sizeof...(Optimizers) > 0 && (detail::has_lr<Optimizers> && ...))
[[nodiscard]] std::function<void(double)> lr_of(Optimizers&... optimizers) {
  return [&optimizers...](double lr) { ((optimizers.lr = lr), ...); };
}

/// For `Callbacks::set_lr` when `train_epoch` applies `EpochContext::lr` itself: says so, as a
/// run whose rate reaches nothing is refused.
inline void lr_from_context(double) noexcept {}

/// The user's side of the loop. `train_epoch` and `evaluate` are required; hooks are optional.
///
/// Call order, per phase: [prune or re-dense] -> before_phase -> evaluate (accuracy at start) ->
/// for each unit (epoch, or step chunk) { set_lr -> before_epoch -> train_epoch (or train_steps)
/// -> evaluate -> after_epoch -> progress line } -> after_phase. In the sparse phase your
/// optimizer must keep the mask: dsd's optimizers do it in their step, or call
/// `dsd::enforce(layers)` after your own.
struct Callbacks {
  /// Where the plan's learning rate goes, the one channel: `run` calls it with the lr of every
  /// unit (the phase's rate after its in-phase decay) before `before_epoch`. `dsd::lr_of(opt,
  /// ...)` for dsd's optimizers, `dsd::torch::lr_setter(opt)` for libtorch's, a lambda for your own;
  /// `dsd::lr_from_context` when train_epoch applies `ctx.lr` itself. It must be set: a run whose
  /// learning rate reaches nothing would re-densify at the full rate, silently.
  std::function<void(double)> set_lr;
  std::function<double(const EpochContext&)> train_epoch;  ///< one epoch; returns its mean loss
  /// `ctx.steps` steps (a unit of a phase given in steps, `PhasePlan::steps`); returns their mean
  /// loss. Required only by a plan with such a phase; the user's data iterator carries on from
  /// one unit to the next, so a 1.25-epoch phase is one epoch and a quarter of the next.
  std::function<double(const EpochContext&)> train_steps;
  std::function<double()> evaluate;                        ///< held-out accuracy (or any score)
  std::function<void(const EpochContext&)> before_phase;
  std::function<void(const EpochContext&, const PhaseReport&)> after_phase;
  std::function<void(const EpochContext&)> before_epoch;
  std::function<void(const EpochContext&, double loss, double accuracy)> after_epoch;
  std::ostream* progress = nullptr;  ///< one line per epoch when set (e.g. &std::cout)
};

namespace detail {
template <layer_collection C>
std::vector<std::any> masks_of(C& layers) {
  std::vector<std::any> masks;
  for_each_layer(layers, [&](auto& l, std::size_t) { masks.emplace_back(l.mask()); });
  return masks;
}
template <layer_collection C>
void count_changes(C& layers, const std::vector<std::any>& before, std::vector<LayerReport>& stats) {
  for_each_layer(layers, [&](auto& l, std::size_t i) {
    using M = typename std::remove_cvref_t<decltype(l)>::mask_type;
    stats[i].changed = changed_entries(std::any_cast<const M&>(before[i]), l.mask());
  });
}

/// What the weights hold, counted in one pass per layer: exactly-zero weights, and pruned
/// positions holding a nonzero weight (updates the optimizer did not mask). Device layers are
/// not read: their zeros are taken from the mask and `measured` is false.
struct WeightCensus {
  std::uint64_t weights = 0;
  std::uint64_t zeros = 0;
  std::uint64_t unmasked = 0;
  bool measured = true;
};

/// Counts the census of `layers`; with `enforce`, then zeroes the pruned positions (W = W ⊙ Mask).
template <layer_collection C>
WeightCensus weight_census(C& layers, bool enforce) {
  WeightCensus c;
  for_each_layer(layers, [&](auto& l, std::size_t) {
    using L = std::remove_cvref_t<decltype(l)>;
    c.weights += l.size();
    if constexpr (layer_space_v<L> == memory_space::host) {
      const auto w = l.weights();
      const auto& mask = l.mask();
      std::uint64_t zeros = 0, unmasked = 0;
      for (std::size_t i = 0; i < w.size(); ++i) {
        const bool zero = w[i] == 0;
        zeros += zero;
        unmasked += !zero & !mask.test(i);
      }
      c.zeros += zeros;
      c.unmasked += unmasked;
      if (enforce && unmasked > 0) {
        l.enforce();
        c.zeros += unmasked;  // the pruned positions it zeroed
      }
    } else {
      c.measured = false;
      c.zeros += l.size() - l.mask().count();
      if (enforce) l.enforce();
    }
  });
  return c;
}

/// Refuses to resume inside a sparse phase whose masks were not restored: such a phase would
/// train dense while its report says sparse. A layer the thresholds name as pruned (by-name
/// policies) must have pruned weights; for a global sparsity that prunes anything, and for a
/// policy that does not say what it prunes, at least one layer must.
template <class Thresholds>
void require_masks_on_resume(const std::vector<LayerReport>& stats, const Thresholds& thresholds,
                             Position start) {
  bool any = false, any_expected = !sparsity_by_name<Thresholds>;
  if constexpr (requires { thresholds.sparsity + 0.0; } && !sparsity_by_name<Thresholds>) {
    std::size_t total = 0;  // GlobalSparsity: its count over the non-excluded weights
    for (const auto& s : stats)
      if (!excludes(thresholds, s.name)) total += s.size;
    any_expected = total > 0 && prune_count(total, thresholds.sparsity, "<global>") > 0;
  }
  for (const auto& s : stats) {
    any = any || s.kept < s.size;
    bool expected = false;
    if constexpr (sparsity_by_name<Thresholds>)
      expected = !excludes(thresholds, s.name) && prune_count(s.size, thresholds.of(s.name), s.name) > 0;
    any_expected = any_expected || expected;
    DSD_REQUIRE(!expected || s.kept < s.size, invalid_argument, "run: resuming inside the sparse "
                "phase (phase ", start.phase_index, ", epoch ", start.epoch, ") but layer \"",
                s.name, "\" has no pruned weights; restore its mask (load_checkpoint) before "
                "resuming, or it trains dense");
  }
  DSD_REQUIRE(any || !any_expected, invalid_argument, "run: resuming inside the sparse phase (phase ",
              start.phase_index, ", epoch ", start.epoch, ") but no layer has a pruned weight; "
              "restore the masks (load_checkpoint) before resuming, or the phase trains dense");
}

/// Calls `f` with phase `p`'s own threshold policy, or with the run's `thresholds` when it has
/// none.
template <class Thresholds, class F>
void with_thresholds(const PhasePlan& p, const Thresholds& thresholds, F&& f) {
  std::visit(
      [&](const auto& own) {
        if constexpr (std::is_same_v<std::remove_cvref_t<decltype(own)>, std::monostate>)
          f(thresholds);
        else
          f(own);
      },
      p.thresholds);
}

/// The phase loop over `layers`, given how to prune them and how to count them:
/// `prune_all(thresholds)`, `stats()` (per-layer statistics) and `census(enforce)`
/// (`weight_census` over the job). `run` and `dist::run` are this loop over whole layers and over
/// shards.
template <layer_collection C, class Thresholds, class PruneAll, class Stats, class Census>
Report run_loop(C& layers, const Plan& plan, const Thresholds& thresholds,
                const Callbacks& callbacks, Position start, PruneAll&& prune_all, Stats&& stats_of,
                Census&& census) {
  plan.validate();
  const std::vector<PhasePlan>& phases = plan.phases;
  const bool any_steps = std::any_of(phases.begin(), phases.end(),
                                     [](const PhasePlan& p) { return p.steps > 0; });
  const bool any_epochs = std::any_of(phases.begin(), phases.end(),
                                      [](const PhasePlan& p) { return p.epochs > 0; });
  DSD_REQUIRE(!any_epochs || callbacks.train_epoch, invalid_argument,
              "run: Callbacks::train_epoch is not set");
  DSD_REQUIRE(!any_steps || callbacks.train_steps, invalid_argument,
              "run: the plan has a phase given in steps but Callbacks::train_steps is not set");
  DSD_REQUIRE(callbacks.evaluate, invalid_argument, "run: Callbacks::evaluate is not set");
  DSD_REQUIRE(static_cast<bool>(callbacks.set_lr), invalid_argument,
              "run: the schedule's learning rate reaches no optimizer; set Callbacks::set_lr "
              "(dsd::lr_of(opt) for dsd's optimizers, dsd::torch::lr_setter(opt) for libtorch's, "
              "or dsd::lr_from_context if train_epoch applies ctx.lr itself)");
  using clock = std::chrono::steady_clock;
  Report report;
  DSD_REQUIRE(
      start.phase_index >= 0 && start.phase_index <= static_cast<int>(phases.size()) &&
          start.epoch >= 0 &&
          (start.phase_index == static_cast<int>(phases.size())
               ? start.epoch == 0
               : start.epoch < std::max(1, plan.units(static_cast<std::size_t>(start.phase_index)))),
      invalid_argument, "resume position (phase ", start.phase_index, ", epoch ", start.epoch,
      ") is not in this schedule of ", phases.size(), " phases");
  const int total_units = plan.total_units();
  int global_epoch = 0;
  for (int index = 0; index < static_cast<int>(phases.size()); ++index) {
    const auto at = static_cast<std::size_t>(index);
    const PhasePlan& phase_plan = phases[at];
    const int units = plan.units(at);
    if (index < start.phase_index) {
      global_epoch += units;
      continue;
    }
    const int first = index == start.phase_index ? start.epoch : 0;
    const bool acts = first == 0 && (phase_plan.prune_before || phase_plan.redense_before);
    const auto before = acts ? masks_of(layers) : std::vector<std::any>{};
    if (first == 0 && phase_plan.prune_before)
      with_thresholds(phase_plan, thresholds, [&](const auto& t) { prune_all(t); });
    if (first == 0 && phase_plan.redense_before) redense(layers);
    std::vector<LayerReport> stats;
    for (LayerStats& s : stats_of()) stats.push_back({std::move(s)});
    if (first > 0 && phase_plan.phase == Phase::sparse)
      with_thresholds(phase_plan, thresholds,
                      [&](const auto& t) { require_masks_on_resume(stats, t, start); });
    if (acts) count_changes(layers, before, stats);
    if (units == 0) continue;
    global_epoch += first;
    EpochContext ctx{phase_plan.phase, phase_plan.round, first, global_epoch, phase_plan.lr,
                     index,            units,            0};
    const auto began = clock::now();
    if (callbacks.before_phase) callbacks.before_phase(ctx);
    PhaseReport phase{phase_plan.phase,     phase_plan.round, phase_plan.epochs, phase_plan.lr,
                      callbacks.evaluate(), 0.0,              0.0,               std::move(stats)};
    phase.steps = phase_plan.steps;
    phase.accuracy_end = phase.accuracy_start;
    for (int e = first; e < units; ++e, ++global_epoch) {
      ctx.epoch = e;
      ctx.global_epoch = global_epoch;
      ctx.lr = phase_plan.decay.rate(phase_plan.lr, e, units);
      ctx.steps = plan.steps_of(at, e);
      callbacks.set_lr(ctx.lr);
      if (callbacks.before_epoch) callbacks.before_epoch(ctx);
      const double loss = ctx.steps > 0 ? callbacks.train_steps(ctx) : callbacks.train_epoch(ctx);
      if (phase_plan.phase == Phase::sparse) {  // the mask holds whatever the user's optimizer did
        const WeightCensus c = census(true);
        if (c.unmasked > 0 && phase.unmasked == 0 && callbacks.progress)
          *callbacks.progress << format("dsd: warning: %d pruned weights were nonzero after a "
                                        "sparse epoch (the optimizer does not keep the mask: call "
                                        "dsd::enforce after each step); run zeroed them\n",
                                        c.unmasked);
        phase.unmasked += c.unmasked;
      }
      phase.accuracy_end = callbacks.evaluate();
      if (callbacks.after_epoch) callbacks.after_epoch(ctx, loss, phase.accuracy_end);
      if (callbacks.progress)
        *callbacks.progress << format("[%-8s r%d] %s %3d/%-3d (total %3d/%d)  lr %-9.3g loss "
                                      "%-9.4f accuracy %.4f\n",
                                      to_string(phase_plan.phase), phase_plan.round,
                                      ctx.steps > 0 ? "steps" : "epoch", e + 1, units,
                                      global_epoch + 1, total_units, ctx.lr, loss,
                                      phase.accuracy_end)
                            << std::flush;
    }
    const WeightCensus end = census(false);
    phase.weight_sparsity =
        end.weights == 0 ? 0.0 : static_cast<double>(end.zeros) / static_cast<double>(end.weights);
    phase.sparsity_measured = end.measured;
    phase.seconds = std::chrono::duration<double>(clock::now() - began).count();
    if (callbacks.after_phase) callbacks.after_phase(ctx, phase);
    report.phases.push_back(std::move(phase));
  }
  return report;
}
}  // namespace detail

/// Runs `plan` over `layers`: each prune uses its phase's threshold policy, or `thresholds`
/// when the phase has none, to decide how many weights each layer loses, and `policy` which
/// ones. Returns the per-phase report. With `start`, the run resumes at that position, assuming
/// the layers (masks included) were restored from a checkpoint taken there: earlier phases are
/// skipped, and a phase entered mid-way does not prune or re-dense again (resuming inside a sparse
/// phase whose masks were not restored is refused). After every sparse unit `run` enforces the
/// masks (one pass over the weights), so a user optimizer that forgets `enforce()` cannot train
/// the phase dense; the report counts what it had to zero (`PhaseReport::unmasked`) and measures
/// each phase's sparsity from the weights. The layers are whole tensors: for shards of a tensor
/// over ranks, use `dist::run`, which prunes them as one tensor.
template <class Policy = KeepmaxCut, layer_collection C, class Thresholds>
requires threshold_policy<Thresholds, C> Report run(C&& layers, const Plan& plan,
                                                    const Thresholds& thresholds,
                                                    const Callbacks& callbacks,
                                                    const Policy& policy = {},
                                                    Position start = {}) {
  return detail::run_loop(
      layers, plan, thresholds, callbacks, start,
      [&](const auto& t) { prune(layers, t, policy); }, [&] { return layer_stats(layers); },
      [&](bool enforce) { return detail::weight_census(layers, enforce); });
}

/// Runs `schedule.plan()` (see above).
template <class Policy = KeepmaxCut, layer_collection C, class Thresholds>
requires threshold_policy<Thresholds, C> Report run(C&& layers, const Schedule& schedule,
                                                    const Thresholds& thresholds,
                                                    const Callbacks& callbacks,
                                                    const Policy& policy = {},
                                                    Position start = {}) {
  return run(layers, schedule.plan(), thresholds, callbacks, policy, start);
}

}  // namespace dsd
