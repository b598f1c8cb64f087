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
#include <string>
#include <utility>
#include <vector>

#include "dsd/io/histogram.hpp"
#include "dsd/layers.hpp"
#include "dsd/schedule/phase_loop.hpp"

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

/// Records a run's boundaries and epochs through `Callbacks`. Host layers.
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

 private:
  HistogramOptions options_;
  std::vector<Boundary> boundaries_;
  std::vector<EpochRecord> epochs_;
  std::chrono::steady_clock::time_point epoch_start_{};
};

}  // namespace dsd::io
