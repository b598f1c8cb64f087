#pragma once
// The command line and training driver shared by the Fashion-MNIST experiment trainers. A model provides
// weights() (the prunable dsd::Masked parameters), all() and grad(i), train_batch(), accuracy(),
// init() and exclude(); this file turns the flags into a dsd::Schedule, runs dsd::run, and
// prints/records the results.

#include <CLI/CLI.hpp>

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <dsd/dsd.hpp>
#include <dsd/io/checkpoint.hpp>
#include <dsd/io/recipe.hpp>
#include <dsd/io/report.hpp>
#include <dsd/io/run_recorder.hpp>
#include <dsd/io/run_records.hpp>
#include <dsd/io/sensitivity_report.hpp>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "fashion_mnist.hpp"
#include "text.hpp"

namespace experiments {

/// Flags common to every trainer (see --help).
struct Options {
  std::string mode = "dsd";
  std::vector<int> epochs = {4, 4, 4};
  double sparsity = 0.5;
  std::optional<double> sensitivity_drop;
  int rounds = 1;
  std::optional<int> prune_at;
  std::string optimizer = "sgd";
  bool optimizer_given = false;  ///< --optimizer on the command line (a recipe must agree with it)
  double lr = 0.01;
  double weight_decay = 1e-4;
  std::uint64_t seed = 1;
  std::size_t batch = 64;
  std::vector<std::string> exclude;
  int threads = 0;
  std::string csv;
  std::string data = fashion::default_dir;
  std::size_t validation = 5000;
  std::size_t train_limit = 0;
  bool compare = false;
  bool quiet = false;
  std::string checkpoint;
  std::string resume;
  std::string sensitivity_out;
  std::size_t stop_after_batches = 0;
  std::vector<double> lrs;        ///< --lrs D,S,R: a learning rate per phase (else --lr, lr/10)
  std::string baseline;           ///< --baseline: the shared dense model of the *-extra modes
  double label_noise = 0.0;       ///< fraction of training labels replaced (symmetric noise)
  double clip_norm = 0.0;         ///< global gradient L2 norm clip (0: none)
  std::string recipe;             ///< --recipe: a plan file, replacing --epochs/--lrs/--sparsity/--rounds
  double scale_epochs = 1.0;      ///< --scale-epochs: the recipe's shape, shorter
  std::string report;             ///< --report: the runs as one HTML file
  std::string report_data;        ///< --report-data: the runs' records (JSON), for dsd_report
  std::string report_name;        ///< --report-name: the chosen mode's name in the report
  std::string command_line;       ///< not a flag: the invocation, as the report's metadata shows it
  /// Called after every optimizer step (not a flag: for tests and instrumentation).
  std::function<void(const dsd::EpochContext&)> after_step;
  /// Data-parallel training (not a flag; set by experiments/fashion_mlp_dist.cpp): this process is
  /// `rank` of `ranks`, trains on its slice of every global batch of `batch` images, `average`
  /// turns its gradients into the mean over all ranks before the step, and `check` runs after
  /// every epoch (e.g. dist::verify_identical). Only rank 0 prints progress and writes files.
  struct DataParallel {
    std::size_t rank = 0, ranks = 1;
    std::function<void(std::span<float>)> average;
    std::function<void()> check;
    std::function<void()> barrier;  ///< every rank waits here (after rank 0 wrote a file)
    /// Replaces each value by its maximum over the ranks (a collective): how the ranks agree,
    /// after every batch and epoch, whether any was asked to stop, so all stop at one batch.
    std::function<void(std::span<std::uint64_t>)> all_reduce_max;
  };
  DataParallel data_parallel{};
};

inline void add_options(CLI::App& app, Options& o) {
  app.option_defaults()->always_capture_default();  // --help shows each trainer's defaults
  app.add_option("--mode", o.mode,
                 "dense | dsd | random-cut | sparse-scratch | fused (equal epochs), or the paper's "
                 "protocol: dsd-extra (a trained dense model + S sparse + R re-dense epochs) and "
                 "its control dense-extra (the same model + the same epochs at the same rates)")
      ->check(CLI::IsMember(
          {"dense", "dsd", "random-cut", "sparse-scratch", "fused", "dsd-extra", "dense-extra"}));
  CLI::Option* epochs_flag = app.add_option("--epochs", o.epochs,
                 "D,S,R: dense, sparse and re-dense epochs (the dense baseline trains D+S+R)")
      ->delimiter(',')
      ->expected(3);
  CLI::Option* sparsity_flag = app.add_option("--sparsity", o.sparsity, "fraction of each layer's weights pruned")
      ->check(CLI::Range(0.0, 0.999999));
  CLI::Option* sensitivity_flag = app.add_option("--sparsity-from-sensitivity", o.sensitivity_drop,
                 "choose per-layer sparsity by sensitivity analysis on the validation split, "
                 "allowing this accuracy drop");
  CLI::Option* rounds_flag = app.add_option("--rounds", o.rounds, "DSD rounds (each further round divides the lr by 10 again)")
      ->check(CLI::PositiveNumber);
  CLI::Option* prune_at_flag = app.add_option("--prune-at", o.prune_at,
                 "fused D+S: prune after this many dense epochs (default D/2 in fused mode)");
  app.add_option("--optimizer", o.optimizer, "sgd (momentum 0.9) | nesterov | adam")
      ->each([&o](const std::string&) { o.optimizer_given = true; })
      ->check(CLI::IsMember({"sgd", "nesterov", "adam"}));
  CLI::Option* lr_flag = app.add_option("--lr", o.lr, "learning rate of the dense and sparse phases")
      ->check(CLI::PositiveNumber);
  app.add_option("--weight-decay", o.weight_decay, "L2 weight decay")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--seed", o.seed, "seed of initialisation, shuffling and Random-Cut");
  app.add_option("--batch", o.batch, "mini-batch size")->check(CLI::PositiveNumber);
  app.add_option("--exclude", o.exclude,
                 "parameters never pruned, e.g. lstm.input,fc1 (\"\" prunes every weight)")
      ->delimiter(',');
  app.add_option("--threads", o.threads, "CPU threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--csv", o.csv, "write one row per epoch to this file");
  app.add_option("--data", o.data, "directory with the Fashion-MNIST *.gz files");
  app.add_option("--validation", o.validation,
                 "training examples held out for validation (model selection)");
  app.add_option("--train-limit", o.train_limit,
                 "train on only the first N training examples (quick runs)");
  app.add_flag("--compare", o.compare, "run the dense baseline and the chosen mode, print both");
  app.add_flag("--quiet", o.quiet, "no per-epoch progress lines");
  app.add_option(
      "--sensitivity-out", o.sensitivity_out,
      "with --sparsity-from-sensitivity: write PREFIX.csv, PREFIX.json and PREFIX.svg (plot)");
  app.add_option(
      "--checkpoint", o.checkpoint,
      "write a resumable checkpoint (safetensors) after every epoch and on SIGINT/SIGTERM");
  app.add_option("--resume", o.resume,
                 "continue the run saved in this checkpoint (same flags as the original run)");
  app.add_option("--stop-after-batches", o.stop_after_batches,
                 "act as if interrupted after this many batches (tests resume mid-epoch)");
  CLI::Option* lrs_flag = app.add_option("--lrs", o.lrs,
                 "D,S,R: learning rates of the dense, sparse and re-dense phases (replaces --lr; "
                 "the paper's ImageNet protocol drops 10x into the sparse phase, 100x into re-dense)")
      ->delimiter(',')
      ->expected(3)
      ->check(CLI::PositiveNumber);
  app.add_option("--baseline", o.baseline,
                 "dsd-extra / dense-extra: the dense model (D epochs at the D rate) both continue "
                 "from; trained and written here when the file is missing");
  app.add_option("--label-noise", o.label_noise,
                 "replace this fraction of training labels by a different random class (seeded "
                 "by --seed; validation and test labels untouched)")
      ->check(CLI::Range(0.0, 0.9));
  CLI::Option* recipe_flag = app.add_option("--recipe", o.recipe,
                 "run this recipe file (recipes/*.json: phases, rates, sparsities, exclusions, "
                 "optimizer) instead of --epochs, --lrs, --sparsity and --rounds; --mode dense runs "
                 "its control (the same phases and rates, no pruning)")
      ->excludes(epochs_flag)
      ->excludes(sparsity_flag)
      ->excludes(sensitivity_flag)
      ->excludes(rounds_flag)
      ->excludes(prune_at_flag)
      ->excludes(lr_flag)
      ->excludes(lrs_flag);
  app.add_option("--scale-epochs", o.scale_epochs,
                 "with --recipe: every phase's epochs times this (rounded, at least 1)")
      ->check(CLI::PositiveNumber)
      ->needs(recipe_flag);
  app.add_option("--clip-norm", o.clip_norm,
                 "scale each batch's gradients so their global L2 norm is at most this (0: off)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--report", o.report,
                 "write the run (with --compare, both runs) as one HTML file: schedule, curves by "
                 "phase, weight histograms at every phase boundary, sparsity, metadata");
  app.add_option("--report-data", o.report_data,
                 "write what --report draws as JSON records; dsd_report merges the records of "
                 "several runs (e.g. seeds) into one report");
  app.add_option("--report-name", o.report_name,
                 "the chosen mode's name in --report and --report-data (default: the mode); runs "
                 "of one name are drawn as seeds of one configuration (mean ± sd)");
}

/// True for the modes that continue a trained dense model (the paper's protocol, its control).
inline bool continues_baseline(const std::string& mode) {
  return mode == "dsd-extra" || mode == "dense-extra";
}

/// The signal (SIGINT, SIGTERM) that asked the run to stop, 0 while none did. Training finishes
/// the current step, checkpoints and stops.
inline std::atomic<int> g_signal = 0;

/// Blocks SIGINT and SIGTERM in the calling thread, and so in every thread started after it
/// (OpenMP's, MPI's), and takes them synchronously in one watcher thread, "dsd-signals", that
/// only records them: no handler ever runs on a computing thread. A handler must not: the kernel
/// writes its signal frame (some 3 KB with the AVX-512 state) below the interrupted thread's
/// stack pointer, and oneDNN's f32 GEMM kernel points the stack pointer at a workspace it took
/// from malloc (Debian's oneDNN 2.6: whenever K > 84), so a SIGINT handled there overwrote the
/// heap chunks below that buffer ("corrupted size vs. prev_size" in 2-thread runs, before this
/// watcher). Call it first in main, before MPI_Init or anything else that starts a thread; later
/// calls do nothing.
inline void watch_signals() {
  static const bool watching = [] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::thread([set] {
      pthread_setname_np(pthread_self(), "dsd-signals");
      for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) == 0) g_signal = sig;
      }
    }).detach();
    return true;
  }();
  (void)watching;
}

/// Thrown once a checkpoint was written after an interruption: the signal (0 for
/// --stop-after-batches) and where the run stopped (the checkpoint's loop state).
struct Interrupted {
  int signal;
  dsd::Position at;
  std::size_t batch;
};

/// Data split into train / validation (held out of the training files) / test.
struct Data {
  fashion::Split train, validation, test;
};

inline Data load_data(const Options& o) {
  Data d;
  d.train = fashion::load(o.data, "train");
  d.test = fashion::load(o.data, "t10k");
  d.validation = fashion::split_off(d.train, o.validation);
  if (o.train_limit > 0 && o.train_limit < d.train.count) {
    d.train.count = o.train_limit;
    d.train.images.resize(o.train_limit * fashion::Split::pixels);
    d.train.labels.resize(o.train_limit);
  }
  if (o.label_noise > 0.0) {
    // Symmetric noise: round(P n) training labels, chosen by a seeded shuffle, each replaced by
    // one of the 9 other classes uniformly. The same --seed gives the same noise in every mode.
    std::mt19937_64 gen(o.seed * 0x9E3779B97F4A7C15ull + 0x6e015eull);
    std::vector<std::size_t> order(d.train.count);
    std::iota(order.begin(), order.end(), std::size_t{0});
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[gen() % i]);
    const auto flips = static_cast<std::size_t>(
        std::llround(o.label_noise * static_cast<double>(d.train.count)));
    for (std::size_t k = 0; k < flips; ++k) {
      auto& label = d.train.labels[order[k]];
      label = static_cast<std::uint8_t>((label + 1 + gen() % 9) % 10);
    }
    std::cout << "label noise: " << flips << " of " << d.train.count
              << " training labels replaced\n";
  }
  fashion::standardise(d.train, {&d.validation, &d.test});
  return d;
}

/// The runs of one invocation: --mode, after its control with --compare (the equal-epoch dense
/// run, or for the paper's protocol the same baseline continued dense at the same rates).
inline std::vector<std::string> modes_to_run(const Options& o) {
  const std::string control = continues_baseline(o.mode) ? "dense-extra" : "dense";
  if (o.compare && o.mode != control) return {control, o.mode};
  return {o.mode};
}

/// The schedule a mode stands for: equal total epochs, or for the *-extra modes the S and R
/// epochs that follow the baseline's D.
inline dsd::Schedule schedule_for(const Options& o, const std::string& mode) {
  dsd::Schedule s{.dense_epochs = o.epochs[0],
                  .sparse_epochs = o.epochs[1],
                  .redense_epochs = o.epochs[2],
                  .lr = o.lrs.empty() ? o.lr : o.lrs[0],
                  .rounds = o.rounds};
  if (!o.lrs.empty()) {
    s.sparse_lr_scale = o.lrs[1] / o.lrs[0];
    s.redense_lr_scale = o.lrs[2] / o.lrs[0];
  }
  if (mode == "dense" || mode == "dense-extra") s.prune = false;
  if (continues_baseline(mode)) s.dense_epochs = 0;  // the D epochs are in the baseline file
  if (mode == "sparse-scratch") s.prune_at_epoch = 0;
  if (mode == "fused")
    s.prune_at_epoch = o.prune_at.value_or(o.epochs[0] / 2);
  else if (o.prune_at)
    s.prune_at_epoch = *o.prune_at;
  return s;
}

/// The plan a mode stands for over the prunable layers called `names`: with --recipe, the
/// recipe's phases (modes dsd and random-cut) or their fair control (mode dense: the same phases
/// and rates, nothing pruned), phases given in steps or fractions of an epoch counted in the
/// trainer's `steps_per_epoch` batches; else the schedule of the flags.
inline dsd::Plan plan_for(const Options& o, const std::string& mode,
                          const std::vector<std::string>& names, std::size_t steps_per_epoch) {
  if (o.recipe.empty()) return schedule_for(o, mode).plan();
  DSD_REQUIRE(mode == "dsd" || mode == "random-cut" || mode == "dense", invalid_argument,
              "--recipe runs --mode dsd, random-cut or dense (its control); not ", mode);
  dsd::Plan plan = dsd::io::read_recipe(o.recipe).plan(names, o.scale_epochs,
                                                       static_cast<std::int64_t>(steps_per_epoch));
  if (mode == "dense")
    for (auto& p : plan.phases) {
      p.phase = dsd::Phase::dense;
      p.prune_before = p.redense_before = false;
      p.thresholds = {};
    }
  return plan;
}

/// The names of a collection's layers, in order.
template <class C>
std::vector<std::string> layer_names(C& layers) {
  std::vector<std::string> names;
  dsd::for_each_layer(layers, [&](auto& l, std::size_t) { names.push_back(l.name()); });
  return names;
}

/// With --recipe: the recipe's optimizer, when it names one, is the run's (an explicit
/// --optimizer that differs is an error, never silently overridden).
inline void apply_recipe_optimizer(Options& o) {
  if (o.recipe.empty()) return;
  const dsd::io::Recipe r = dsd::io::read_recipe(o.recipe);
  DSD_REQUIRE(!o.optimizer_given || r.optimizer.empty() || r.optimizer == o.optimizer,
              invalid_argument, "--optimizer ", o.optimizer, " and the optimizer \"", r.optimizer,
              "\" of --recipe ", o.recipe, " disagree; drop --optimizer or edit the recipe");
  if (!r.optimizer.empty()) o.optimizer = r.optimizer;
  DSD_REQUIRE(o.optimizer == "sgd" || o.optimizer == "nesterov" || o.optimizer == "adam",
              invalid_argument, "--recipe ", o.recipe, ": optimizer \"", o.optimizer,
              "\" is not one of these trainers' sgd, nesterov or adam");
}

/// One epoch row of the CSV and of the summary.
struct EpochRow {
  std::string phase;
  int round, epoch;
  double lr, loss, validation, test, sparsity, seconds;
};

/// The row of an epoch: its place in the schedule, loss, accuracies, the layers' sparsity, time.
template <class Layers>
EpochRow epoch_row(const dsd::EpochContext& ctx, double loss, double validation, double test,
                   const Layers& layers, double seconds) {
  std::size_t n = 0, kept = 0;
  for (const auto& w : layers) n += w.size(), kept += w.mask().count();
  return {std::string(dsd::to_string(ctx.phase)), ctx.round, ctx.global_epoch + 1, ctx.lr, loss,
          validation, test, 1.0 - double(kept) / double(n), seconds};
}

/// The result of one run.
struct RunResult {
  std::string mode;
  dsd::Report report;
  std::vector<EpochRow> rows;
  double test_accuracy = 0.0;
  std::optional<dsd::io::RunRecord> record;  ///< with --report or --report-data
};

/// Whether the runs are recorded for --report or --report-data.
inline bool records_wanted(const Options& o) { return !o.report.empty() || !o.report_data.empty(); }

/// The CPU's name as /proc/cpuinfo gives it ("unknown CPU" elsewhere).
inline std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos)
      return line.substr(line.find_first_not_of(" \t", line.find(':') + 1));
  return "unknown CPU";
}

/// What a report says about a run: what reproduces it and where it ran.
inline std::vector<std::pair<std::string, std::string>> run_metadata(const Options& o,
                                                                     const std::string& mode) {
  int threads = 1;
#if defined(_OPENMP)
  threads = omp_get_max_threads();
#endif
  if (o.threads > 0) threads = o.threads;
  return {{"mode", mode},
          {"seed", std::to_string(o.seed)},
          {"command", o.command_line},
          {"optimizer", o.optimizer},
          {"batch", std::to_string(o.batch * o.data_parallel.ranks)},
          {"machine", cpu_name() + ", " + std::to_string(std::thread::hardware_concurrency()) +
                          " cores, " + std::to_string(threads) + " threads" +
                          (o.data_parallel.ranks > 1
                               ? ", " + std::to_string(o.data_parallel.ranks) + " ranks"
                               : std::string())},
          {"dsd", format("%d.%d.%d", DSD_VERSION_MAJOR, DSD_VERSION_MINOR, DSD_VERSION_PATCH)}};
}

/// The record of a finished run of `mode` under `plan` with the run's `thresholds`, named for
/// the report.
template <class Thresholds>
dsd::io::RunRecord make_record(const dsd::io::RunRecorder& recorder, const Options& o,
                               const std::string& mode, const dsd::Plan& plan,
                               const Thresholds& thresholds, const RunResult& result,
                               const std::optional<dsd::SensitivityTable>& sensitivity) {
  const bool control = modes_to_run(o).size() > 1 && mode != o.mode;
  dsd::io::RunRecord r = recorder.record(o.report_name.empty() || control ? mode : o.report_name,
                                         plan, thresholds);
  r.metadata = run_metadata(o, mode);
  r.results = {{"test accuracy", result.test_accuracy}};  // the caller's, once it is known
  if (sensitivity) {
    r.sensitivity = *sensitivity;
    r.max_drop = o.sensitivity_drop.value_or(0.0);
  }
  return r;
}

/// Writes --report and --report-data from the runs' records (rank 0 only).
inline void write_reports(const Options& o, const std::vector<RunResult>& runs) {
  if (!records_wanted(o) || o.data_parallel.rank != 0) return;
  std::vector<dsd::io::RunRecord> records;
  for (const auto& r : runs)
    if (r.record) records.push_back(*r.record);
  if (!o.report.empty()) {
    std::string title = o.command_line.substr(0, o.command_line.find(' ')) + ": ";
    for (std::size_t i = 0; i < records.size(); ++i) title += (i > 0 ? " vs " : "") + records[i].name;
    dsd::io::write_report(o.report, records, {.title = title});
    std::cout << "report written to " << o.report << "\n";
  }
  if (!o.report_data.empty()) {
    dsd::io::write_run_records(o.report_data, records);
    std::cout << "run records written to " << o.report_data << "\n";
  }
}

/// The line a terminal shows within an epoch, redrawn in place: batches done, images per second
/// and the time left. Nothing at all when standard output is not a terminal (a log, a pipe,
/// ctest); cleared when the epoch ends (or is interrupted), before the epoch's own line.
class LiveLine {
 public:
  /// `first`: the batch the epoch starts at (a resumed epoch's), not counted in images/s.
  LiveLine(bool wanted, std::size_t total, std::size_t images_per_batch, std::size_t first = 0)
      : on_(wanted && ::isatty(STDOUT_FILENO) == 1), total_(total), images_(images_per_batch), first_(first) {}
  LiveLine(const LiveLine&) = delete;
  LiveLine& operator=(const LiveLine&) = delete;
  ~LiveLine() {
    if (shown_) std::cout << "\r\033[K" << std::flush;
  }
  /// After `done` of the epoch's batches (at most 4 redraws a second).
  void update(std::size_t done) {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    if (shown_ && now - last_ < std::chrono::milliseconds(250)) return;
    last_ = now;
    shown_ = true;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0.0 ? static_cast<double>((done - std::min(done, first_)) * images_) / secs : 0.0;
    const double left = rate > 0.0 ? static_cast<double>((total_ - std::min(total_, done)) * images_) / rate : 0.0;
    const long eta = std::lround(left);
    std::cout << format("\r  batch %zu/%zu  %.0f img/s  ETA %ld:%02ld\033[K", done, total_, rate,
                        eta / 60, eta % 60)
              << std::flush;
  }

 private:
  bool on_;
  bool shown_ = false;
  std::size_t total_, images_, first_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_{};
};

/// One optimizer step over every parameter: the model's own (the GPU MLP updates all its
/// parameters in one launch) or one dsd step per parameter from the model's gradients.
template <class Model, class Op, class Params>
void step_all(Model& model, const Op& op, Params& params) {
  if constexpr (requires { model.step(op); })
    model.step(op);
  else
    for (std::size_t i = 0; i < params.size(); ++i) op.step(params[i], model.grad(i));
}

template <class Model>
RunResult train(Model& model, const Data& data, const Options& o, const std::string& mode);

/// The flags that make a baseline file: D dense epochs at the dense rate.
inline std::string baseline_key(const Options& o) {
  return std::to_string(o.epochs[0]) + " epochs at lr " +
         format("%.9g", o.lrs.empty() ? o.lr : o.lrs[0]) + ", " + o.optimizer + ", weight decay " +
         format("%.9g", o.weight_decay) + ", batch " + std::to_string(o.batch) + ", train " +
         std::to_string(o.train_limit) + ", label noise " + format("%.9g", o.label_noise) +
         ", clip " + format("%.9g", o.clip_norm);
}

/// Refuses a *-extra mode without --baseline.
inline void require_baseline(const Options& o, const std::string& mode) {
  DSD_REQUIRE(!o.baseline.empty(), invalid_argument, "--mode ", mode,
              " continues a trained dense model: give --baseline FILE (trained and written "
              "there when missing)");
}

/// The options of the run that trains the *-extra modes' baseline (D dense epochs at the dense
/// rate), announced on stdout; every trainer trains it with these.
inline Options baseline_options(const Options& o) {
  Options b = o;
  b.epochs = {o.epochs[0], 0, 0};
  b.lr = o.lrs.empty() ? o.lr : o.lrs[0];
  b.lrs.clear();
  b.baseline.clear();
  b.report.clear();  // the report shows the runs asked for, not the baseline they continue
  b.report_data.clear();
  std::cout << "training the dense baseline (" << baseline_key(o) << ") into " << o.baseline
            << "\n";
  return b;
}

/// Trains the dense baseline of the *-extra modes into `o.baseline`, through a temporary file
/// renamed at the end so an interrupted run leaves none.
template <class Model>
void train_baseline(Model& model, const Data& data, const Options& o) {
  Options b = baseline_options(o);
  b.checkpoint = o.baseline + ".partial";
  (void)train(model, data, b, "dense");
  // Rank 0 writes the file for every rank (the weights are replicated).
  if (o.data_parallel.rank == 0) std::filesystem::rename(b.checkpoint, o.baseline);
}

/// Loads the baseline into `params` and the shuffling RNG, after checking it was trained with
/// this run's seed and baseline flags (both arms of a pair must start from the same model).
template <class Params>
void load_baseline(Params params, const Options& o, std::mt19937_64& shuffle_gen) {
  const auto meta = dsd::io::load_checkpoint(o.baseline, params);
  const auto get = [&](const std::string& k) {
    const auto it = meta.find(k);
    return it == meta.end() ? std::string("(none)") : it->second;
  };
  DSD_REQUIRE(get("mode") == "dense" && get("seed") == std::to_string(o.seed) &&
                  get("baseline") == baseline_key(o),
              invalid_argument, "\"", o.baseline, "\" is the baseline of --seed ", get("seed"),
              " (", get("baseline"), "); this run needs --seed ", o.seed, " (", baseline_key(o),
              ")");
  const auto loop = dsd::io::read_loop_state(o.baseline);
  DSD_REQUIRE(loop.has_value(), io, "\"", o.baseline, "\" has no loop state");
  std::istringstream(loop->user) >> shuffle_gen;
}

/// Trains `model` under `mode` and returns per-epoch rows and the final test accuracy.
template <class Model>
RunResult train(Model& model, const Data& data, const Options& o, const std::string& mode) {
  DSD_REQUIRE(data.train.count >= model.batch() * o.data_parallel.ranks, invalid_argument, "only ",
              data.train.count, " training images for a batch of ",
              model.batch() * o.data_parallel.ranks);
  DSD_REQUIRE(o.data_parallel.ranks == 1 || o.data_parallel.all_reduce_max, invalid_argument,
              "training on ", o.data_parallel.ranks,
              " ranks needs DataParallel::all_reduce_max, so that every rank stops at one batch");
  model.init(o.seed);
  using Opt = std::variant<dsd::MomentumSgd, dsd::Nesterov, dsd::Adam>;
  Opt opt =
      o.optimizer == "adam" ? Opt(dsd::Adam{.lr = o.lr, .weight_decay = o.weight_decay})
      : o.optimizer == "nesterov"
          ? Opt(dsd::Nesterov{.lr = o.lr, .momentum = 0.9, .weight_decay = o.weight_decay})
          : Opt(dsd::MomentumSgd{.lr = o.lr, .momentum = 0.9, .weight_decay = o.weight_decay});
  std::mt19937_64 shuffle_gen(o.seed ^ 0x5eedull);
  std::vector<std::size_t> order(data.train.count);
  std::vector<float> xb(model.batch() * fashion::Split::pixels);
  std::vector<std::uint8_t> yb(model.batch());
  RunResult result{mode, {}, {}, 0.0, {}};
  auto weights = model.weights();
  auto params = model.all();
  auto epoch_start = std::chrono::steady_clock::now();
  std::size_t batches_run = 0;

  // A checkpoint holds the layers plus the loop state (dsd::io::LoopState): where to continue,
  // the batch within that epoch, and the shuffling RNG as it was before that epoch's shuffle.
  const dsd::Plan run_plan = plan_for(o, mode, layer_names(weights),
                                     data.train.count / (model.batch() * o.data_parallel.ranks));
  const std::vector<dsd::PhasePlan>& plan = run_plan.phases;
  const auto save = [&](dsd::Position at, std::size_t batch,
                        const std::string& rng_before_shuffle) {
    // Data-parallel ranks hold the same weights, masks and RNG: rank 0 writes for all of them.
    if (o.data_parallel.rank != 0) return;
    const dsd::PhasePlan& next = plan[std::min<std::size_t>(at.phase_index, plan.size() - 1)];
    dsd::io::save_checkpoint(o.checkpoint, model.all(), {at, batch, rng_before_shuffle},
                             {{"mode", mode},
                              {"seed", std::to_string(o.seed)},
                              {"policy", std::string(mode == "random-cut" ? dsd::RandomCut::name
                                                                          : dsd::KeepmaxCut::name)},
                              // Informational: round and lr of the phase to continue in.
                              {"round", std::to_string(next.round)},
                              {"lr", std::to_string(next.lr)},
                              {"optimizer", o.optimizer},
                              {"baseline", baseline_key(o)},
                              {"ranks", std::to_string(o.data_parallel.ranks)}});
  };
  dsd::Position start{};
  std::size_t resume_batch = 0;
  if (!o.resume.empty()) {
    const auto meta = dsd::io::load_checkpoint(o.resume, model.all());
    const auto get = [&](const std::string& k) {
      const auto it = meta.find(k);
      DSD_REQUIRE(it != meta.end(), io, "\"", o.resume, "\" has no \"", k,
                  "\" entry; not written by this trainer");
      return it->second;
    };
    DSD_REQUIRE(get("mode") == mode && get("seed") == std::to_string(o.seed) &&
                    get("optimizer") == o.optimizer,
                invalid_argument, "\"", o.resume, "\" was written by a run with --mode ",
                get("mode"), " --seed ", get("seed"), " --optimizer ", get("optimizer"),
                "; resume with the same flags");
    DSD_REQUIRE(get("ranks") == std::to_string(o.data_parallel.ranks), invalid_argument, "\"",
                o.resume, "\" was written by a run of ", get("ranks"), " ranks; this job has ",
                o.data_parallel.ranks, " (resume with the same world size)");
    const auto loop = dsd::io::read_loop_state(o.resume);
    DSD_REQUIRE(loop.has_value(), io, "\"", o.resume,
                "\" has no loop state; not written by this trainer");
    start = loop->position;
    resume_batch = loop->batch;
    std::istringstream(loop->user) >> shuffle_gen;
    std::cout << "resuming " << mode << " at phase " << start.phase_index << ", epoch "
              << start.epoch << ", batch " << resume_batch << " from " << o.resume << "\n";
  }
  if (continues_baseline(mode)) {
    require_baseline(o, mode);
    DSD_REQUIRE(o.resume.empty(), invalid_argument, "--resume and --mode ", mode,
                " do not combine: the run already starts from --baseline");
    if (!std::filesystem::exists(o.baseline)) train_baseline(model, data, o);
    if (o.data_parallel.barrier) o.data_parallel.barrier();  // until rank 0's file is in place
    load_baseline(model.all(), o, shuffle_gen);
  }
  std::string rng_at_epoch_start;
  // Whether to stop here and for which signal: this rank's request (a signal, or `at_limit` of
  // --stop-after-batches) combined over the ranks, so that every rank stops after the batch rank
  // 0's checkpoint records. Every rank asks at the same points: after each batch and each epoch.
  const auto stop_requested = [&](bool at_limit) -> std::optional<int> {
    std::array<std::uint64_t, 2> want{static_cast<std::uint64_t>(g_signal.load()), at_limit};
    if (o.data_parallel.all_reduce_max) o.data_parallel.all_reduce_max(want);
    if (want[0] == 0 && want[1] == 0) return std::nullopt;
    return static_cast<int>(want[0]);
  };

  dsd::Callbacks cb;
  cb.before_epoch = [&](const dsd::EpochContext&) {
    epoch_start = std::chrono::steady_clock::now();
  };
  cb.set_lr = [&](double lr) { std::visit([&](auto& op) { op.lr = lr; }, opt); };
  // Data-parallel: the global batch is every rank's batch together; each rank takes its slice.
  const std::size_t global_batch = model.batch() * o.data_parallel.ranks;
  const std::size_t batches_per_epoch = data.train.count / global_batch;
  // One unit of the plan: a whole epoch (`count` = batches_per_epoch) or, in a phase given in
  // steps, the first `count` batches of a fresh shuffle; mid-unit resume continues at its batch.
  const auto train_batches = [&](const dsd::EpochContext& ctx, std::size_t count) {
    std::ostringstream rng;
    rng << shuffle_gen;
    rng_at_epoch_start = rng.str();
    std::iota(order.begin(), order.end(), std::size_t{0});
    for (std::size_t i = order.size(); i > 1; --i)
      std::swap(order[i - 1], order[shuffle_gen() % i]);
    double loss = 0;
    const std::size_t batches = count;
    const std::size_t first = std::exchange(resume_batch, 0);
    LiveLine live(!o.quiet && o.data_parallel.rank == 0, batches, global_batch, first);
    for (std::size_t b = first; b < batches; ++b) {
      for (std::size_t j = 0; j < model.batch(); ++j) {
        const std::size_t src =
            order[b * global_batch + o.data_parallel.rank * model.batch() + j];
        std::copy_n(data.train.images.data() + src * fashion::Split::pixels, fashion::Split::pixels,
                    xb.data() + j * fashion::Split::pixels);
        yb[j] = data.train.labels[src];
      }
      loss += model.train_batch(xb.data(), yb.data());
      if (o.clip_norm > 0.0) {
        if constexpr (requires { model.clip_gradients(1.0); })
          model.clip_gradients(o.clip_norm);
        else
          DSD_THROW(invalid_argument, "--clip-norm is not supported by this trainer");
      }
      if (o.data_parallel.average) {
        if constexpr (requires { model.mutable_grad(0); }) {
          for (std::size_t i = 0; i < params.size(); ++i) o.data_parallel.average(model.mutable_grad(i));
        } else {
          DSD_THROW(invalid_argument, "this trainer cannot train data-parallel");
        }
      }
      std::visit([&](const auto& op) { step_all(model, op, params); }, opt);
      if (o.after_step) o.after_step(ctx);
      ++batches_run;
      live.update(b + 1);
      const auto stop =
          stop_requested(o.stop_after_batches > 0 && batches_run == o.stop_after_batches);
      if (stop && b + 1 < batches) {  // at an epoch's end the after_epoch checkpoint handles it
        const dsd::Position at{ctx.phase_index, ctx.epoch};
        if (!o.checkpoint.empty()) save(at, b + 1, rng_at_epoch_start);
        throw Interrupted{*stop, at, b + 1};
      }
    }
    return loss / static_cast<double>(batches - first);
  };
  cb.train_epoch = [&](const dsd::EpochContext& ctx) { return train_batches(ctx, batches_per_epoch); };
  cb.train_steps = [&](const dsd::EpochContext& ctx) {
    DSD_REQUIRE(static_cast<std::size_t>(ctx.steps) <= batches_per_epoch, invalid_argument, "a unit of ", ctx.steps,
                " steps is longer than an epoch of ", batches_per_epoch, " batches");
    return train_batches(ctx, static_cast<std::size_t>(ctx.steps));
  };
  cb.evaluate = [&] { return model.accuracy(data.validation); };
  cb.after_epoch = [&](const dsd::EpochContext& ctx, double loss, double val) {
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    result.rows.push_back(epoch_row(ctx, loss, val, model.accuracy(data.test), weights, secs));
    if (o.data_parallel.check) o.data_parallel.check();
    std::ostringstream rng;
    rng << shuffle_gen;
    if (!o.checkpoint.empty()) save(dsd::Position::after(ctx), 0, rng.str());
    if (const auto stop =
            stop_requested(o.stop_after_batches > 0 && batches_run >= o.stop_after_batches))
      throw Interrupted{*stop, dsd::Position::after(ctx), 0};
  };
  if (!o.quiet && o.data_parallel.rank == 0) cb.progress = &std::cout;
  std::optional<dsd::io::RunRecorder> recorder;  // last: it chains the hooks set above
  if (records_wanted(o)) recorder.emplace().attach(cb, weights);
  std::optional<dsd::SensitivityTable> sensitivity;

  const auto run_with = [&](const auto& thresholds) {
    auto report = mode == "random-cut"
                      ? dsd::run(weights, run_plan, thresholds, cb, dsd::RandomCut{.seed = o.seed}, start)
                      : dsd::run(weights, run_plan, thresholds, cb, dsd::KeepmaxCut{}, start);
    if (recorder)
      result.record = make_record(*recorder, o, mode, run_plan, thresholds, result, sensitivity);
    return report;
  };
  if (o.sensitivity_drop && mode != "dense") {
    result.report = run_with(dsd::SensitivitySparsity{
        .max_drop = *o.sensitivity_drop,
        .evaluate = cb.evaluate,
        .on_table = [&](const dsd::SensitivityTable& t) {
          sensitivity = t;
          if (!o.sensitivity_out.empty()) {
            dsd::io::write_sensitivity_csv(o.sensitivity_out + ".csv", t);
            dsd::io::write_sensitivity_json(o.sensitivity_out + ".json", t, *o.sensitivity_drop);
            dsd::io::write_sensitivity_svg(o.sensitivity_out + ".svg", t, *o.sensitivity_drop);
            std::cout << "sensitivity written to " << o.sensitivity_out << ".{csv,json,svg}\n";
          }
          if (o.quiet) return;
          std::cout << "sensitivity (validation accuracy, baseline " << t.baseline << "):\n";
          t.write_csv(std::cout);
        }});
  } else {
    result.report = run_with(dsd::UniformSparsity{.sparsity = o.sparsity});
  }
  result.test_accuracy = model.accuracy(data.test);
  if (result.record) result.record->results = {{"test accuracy", result.test_accuracy}};
  return result;
}

inline void write_csv(const std::string& path, const std::vector<RunResult>& runs) {
  std::ostringstream f;
  f << "mode,phase,round,epoch,lr,train_loss,validation_accuracy,test_accuracy,sparsity,seconds\n";
  for (const auto& r : runs)
    for (const auto& e : r.rows)
      f << r.mode << ',' << e.phase << ',' << e.round << ',' << e.epoch << ',' << e.lr << ','
        << e.loss << ',' << e.validation << ',' << e.test << ',' << e.sparsity << ',' << e.seconds
        << '\n';
  dsd::io::write_atomic(path, f.str());
}

/// After the runs: the side-by-side table of --compare, the CSV file of --csv and the final
/// accuracy line every trainer ends with.
inline void print_results(const Options& o, const std::vector<RunResult>& runs) {
  if (runs.size() > 1) {
    std::cout << "\n"
              << format("%-20s %12s %12s\n", "", runs[0].mode.c_str(),
                                     runs[1].mode.c_str());
    for (std::size_t p = 0; p < runs[1].report.phases.size(); ++p) {
      const auto& ph = runs[1].report.phases[p];
      const auto* base = p < runs[0].report.phases.size() ? &runs[0].report.phases[p] : nullptr;
      std::cout << format(
          "%-20s %12.4f %12.4f\n",
          (std::string("val after ") + std::string(dsd::to_string(ph.phase))).c_str(),
          base ? base->accuracy_end : 0.0, ph.accuracy_end);
    }
    std::cout << format("%-20s %12.4f %12.4f\n", "test accuracy",
                                     runs[0].test_accuracy, runs[1].test_accuracy);
  }
  if (!o.csv.empty() && o.data_parallel.rank == 0) write_csv(o.csv, runs);
  write_reports(o, runs);
  std::cout << format("final test accuracy: %.4f\n", runs.back().test_accuracy);
}

/// The invocation as one line: the program's file name and its arguments, quoted where a shell
/// would need it ('' for an empty one).
inline std::string command_line(int argc, char** argv) {
  std::string line = argc > 0 ? std::filesystem::path(argv[0]).filename().string() : "";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool plain = !a.empty() && a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                         "0123456789-_=.,/:+@%") == std::string::npos;
    std::string quoted = "'";
    for (const char c : a) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    line += " " + (plain ? a : quoted + "'");
  }
  return line;
}

/// What --report and the other files written at a run's end need, checked before it trains (so
/// that hours of training are not lost to a mistyped directory): a report draws a whole run (one
/// resumed from a checkpoint recorded only what followed it); with --compare the chosen mode's
/// --report-name is not its control's (two runs of one name are drawn as seeds of one
/// configuration); each output's directory exists and is writable, and the file is no directory.
inline void require_whole_run_for_report(const Options& o) {
  DSD_REQUIRE(o.resume.empty() || !records_wanted(o), invalid_argument,
              "--report and --report-data draw a whole run, and a resumed run records only the "
              "epochs after its checkpoint; drop them, or report a run that is not resumed");
  const auto modes = modes_to_run(o);
  DSD_REQUIRE(o.report_name.empty() || modes.size() == 1 || o.report_name != modes.front(),
              invalid_argument, "--report-name ", o.report_name, " is the name of the --compare control run; "
              "runs of one name are drawn as seeds of one configuration: choose another name");
  for (const auto& [flag, path] : {std::pair<const char*, const std::string&>{"--report", o.report},
                                   {"--report-data", o.report_data}, {"--csv", o.csv}}) {
    if (path.empty()) continue;
    const std::filesystem::path file(path);
    const std::filesystem::path dir = file.parent_path().empty() ? "." : file.parent_path();
    DSD_REQUIRE(!std::filesystem::is_directory(file), invalid_argument, flag, " ", path, " is a directory");
    DSD_REQUIRE(std::filesystem::is_directory(dir) && ::access(dir.c_str(), W_OK) == 0, invalid_argument,
                flag, " ", path, ": the directory \"", dir.string(), "\" does not exist or is not writable");
  }
}

/// Parses flags (starting from `o`, the trainer's defaults), loads data, builds the model with
/// `make_model(options)`, runs the requested mode (and the dense baseline with --compare), prints
/// reports and the final accuracy line.
template <class MakeModel>
int main_with(int argc, char** argv, const char* description, Options o, MakeModel make_model,
              const std::function<void(CLI::App&)>& extra_flags = {}) {
  watch_signals();  // first: every thread started later inherits the blocked signals
  CLI::App app{description};
  add_options(app, o);
  if (extra_flags) extra_flags(app);
  CLI11_PARSE(app, argc, argv);
  o.command_line = command_line(argc, argv);
  try {
#if defined(_OPENMP)
    if (o.threads > 0) omp_set_num_threads(o.threads);
#endif
    DSD_REQUIRE(o.resume.empty() || !o.compare, invalid_argument,
                "--resume continues one run; drop --compare");
    require_whole_run_for_report(o);
    apply_recipe_optimizer(o);
    const Data data = load_data(o);
    std::cout << "train " << data.train.count << ", validation " << data.validation.count
              << ", test " << data.test.count << " images from " << o.data << "\n";
    auto model = make_model(o);
    model->exclude(o.exclude);
    if (!o.quiet) std::cout << "parameters:\n" << model->describe();
    std::vector<RunResult> runs;
    for (const auto& mode : modes_to_run(o)) {
      std::cout << "== " << mode << " ==\n";
      runs.push_back(train(*model, data, o, mode));
      dsd::print_report(std::cout, runs.back().report);
    }
    print_results(o, runs);
  } catch (const Interrupted& i) {
    const std::string at =
        format("phase %d, epoch %d, batch %zu", i.at.phase_index, i.at.epoch, i.batch);
    std::cout << "interrupted at " << at
              << (o.checkpoint.empty() ? " (no --checkpoint given)"
                                       : "; checkpoint written to " + o.checkpoint)
              << "\n";
    // Every rank says where it stopped (only rank 0 prints to standard output), in one write.
    if (o.data_parallel.ranks > 1)
      std::cerr << format("rank %zu of %zu stopped at %s\n", o.data_parallel.rank,
                          o.data_parallel.ranks, at.c_str());
    return i.signal != 0 ? 128 + i.signal : 3;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace experiments
