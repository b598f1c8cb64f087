// DSD inside an ordinary libtorch trainer: LeNet-5 as a torch::nn::Module, a torch data loader,
// torch::optim, zero_grad / backward / step. The lines marked "+ dsd" are all DSD adds.
//   fashion_torch --mode dsd --epochs 4,4,4 --sparsity 0.5 --lr 0.03
//   fashion_torch --compare            (dense baseline and DSD side by side)
//   fashion_torch --mode dsd-extra --baseline base.pt --epochs 8,4,4 --lrs 0.03,0.003,0.0003
// Flags and output lines are those of the oneDNN trainers (fashion_cnn).
#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <dsd/adapters/torch.hpp>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "../common/trainer.hpp"
#include "lenet5.hpp"

namespace {

using experiments::LeNet5;

/// A Fashion-MNIST split as a torch dataset that serves whole batches (one index_select each).
class Images : public torch::data::datasets::BatchDataset<Images, torch::data::Example<>> {
 public:
  explicit Images(const fashion::Split& s)
      : images_(torch::from_blob(const_cast<float*>(s.images.data()),
                                 {static_cast<std::int64_t>(s.count), 1, 28, 28})
                    .clone()),
        labels_(torch::from_blob(const_cast<std::uint8_t*>(s.labels.data()),
                                 {static_cast<std::int64_t>(s.count)}, torch::kUInt8)
                    .to(torch::kLong)) {}
  torch::data::Example<> get_batch(c10::ArrayRef<std::size_t> indices) override {
    const auto index = torch::tensor(std::vector<std::int64_t>(indices.begin(), indices.end()));
    return {images_.index_select(0, index), labels_.index_select(0, index)};
  }
  c10::optional<std::size_t> size() const override { return labels_.size(0); }
  const torch::Tensor& images() const { return images_; }
  const torch::Tensor& labels() const { return labels_; }

 private:
  torch::Tensor images_, labels_;
};

double accuracy(LeNet5& model, const Images& split) {
  torch::NoGradGuard no_grad;
  model->eval();
  std::int64_t correct = 0;
  const std::int64_t n = split.labels().size(0);
  for (std::int64_t b = 0; b < n; b += 1000) {
    const auto end = std::min(n, b + 1000);
    const auto predicted = model->forward(split.images().slice(0, b, end)).argmax(1);
    correct += predicted.eq(split.labels().slice(0, b, end)).sum().item<std::int64_t>();
  }
  return static_cast<double>(correct) / static_cast<double>(n);
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const experiments::Options& o, LeNet5& model) {
  if (o.optimizer == "adam")
    return std::make_unique<torch::optim::Adam>(
        model->parameters(), torch::optim::AdamOptions(o.lr).weight_decay(o.weight_decay));
  DSD_REQUIRE(o.optimizer == "sgd" || o.optimizer == "nesterov", invalid_argument, "--optimizer ",
              o.optimizer, ": fashion_torch trains with torch::optim's sgd or nesterov (momentum 0.9) or adam");
  return std::make_unique<torch::optim::SGD>(
      model->parameters(), torch::optim::SGDOptions(o.lr).momentum(0.9).nesterov(
                               o.optimizer == "nesterov").weight_decay(o.weight_decay));
}

// The paper's protocol (--mode dsd-extra / dense-extra): both arms continue one dense model,
// trained for D epochs into --baseline when the file is missing. It holds what a libtorch trainer
// would save to continue: the module, the optimizer's state and the generator that orders the
// batches, with the seed and flags that made it (a baseline of other flags is refused).

/// Writes the baseline through `path`.partial, renamed when complete.
void save_baseline(const std::string& path, const experiments::Options& o, LeNet5& model,
                   torch::optim::Optimizer& optimizer) {
  torch::serialize::OutputArchive archive, module, state;
  model->save(module);
  optimizer.save(state);
  archive.write("module", module);
  archive.write("optimizer", state);
  archive.write("generator", torch::IValue(at::detail::getDefaultCPUGenerator().get_state()));
  archive.write("seed", torch::IValue(static_cast<std::int64_t>(o.seed)));
  archive.write("baseline", torch::IValue(experiments::baseline_key(o)));
  archive.save_to(path + ".partial");
  std::filesystem::rename(path + ".partial", path);
}

/// Loads the baseline into `model`, `optimizer` and the default generator, after checking that
/// it was trained with this run's seed and baseline flags.
void load_baseline(const std::string& path, const experiments::Options& o, LeNet5& model,
                   torch::optim::Optimizer& optimizer) {
  torch::serialize::InputArchive archive, module, state;
  torch::IValue seed, key, generator;
  try {
    archive.load_from(path);
    archive.read("seed", seed);
    archive.read("baseline", key);
    archive.read("generator", generator);
  } catch (const c10::Error& e) {
    DSD_THROW(io, "\"", path, "\" is not a baseline written by fashion_torch: ",
              e.what_without_backtrace());
  }
  DSD_REQUIRE(seed.toInt() == static_cast<std::int64_t>(o.seed) &&
                  key.toStringRef() == experiments::baseline_key(o),
              invalid_argument, "\"", path, "\" is the baseline of --seed ", seed.toInt(), " (",
              key.toStringRef(), "); this run needs --seed ", o.seed, " (",
              experiments::baseline_key(o), ")");
  archive.read("module", module);
  model->load(module);
  archive.read("optimizer", state);
  optimizer.load(state);
  auto gen = at::detail::getDefaultCPUGenerator();
  const std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(generator.toTensor());
}

/// One run of `mode`: the ordinary libtorch training loop, with DSD added. A dense run with
/// `write_baseline` saves its final state there (the *-extra modes' baseline).
experiments::RunResult train(const experiments::Options& o, const std::string& mode,
                          const experiments::Data& data, const std::string& write_baseline = {}) {
  torch::manual_seed(o.seed);  // same initialisation and batch order in every mode
  LeNet5 model;
  auto optimizer_ptr = make_optimizer(o, model);
  torch::optim::Optimizer& optimizer = *optimizer_ptr;
  const Images validation(data.validation), test(data.test);
  auto loader = torch::data::make_data_loader(
      Images(data.train), torch::data::samplers::RandomSampler(data.train.count),
      torch::data::DataLoaderOptions(o.batch).drop_last(true));
  if (experiments::continues_baseline(mode)) {
    experiments::require_baseline(o, mode);
    if (!std::filesystem::exists(o.baseline))
      (void)train(experiments::baseline_options(o), "dense", data, o.baseline);
    load_baseline(o.baseline, o, model, optimizer);
  }

  auto layers = dsd::torch::wrap(model, {.exclude = o.exclude});  // + dsd: weights by name
  dsd::Callbacks cb;                                               // + dsd
  cb.set_lr = dsd::torch::lr_setter(optimizer);  // + dsd: the schedule's lr of every phase
  // An epoch, or in a phase given in steps the first `most` batches of a fresh shuffle.
  const auto train_batches = [&](std::size_t most) {
    model->train();
    double loss_sum = 0;
    std::size_t batches = 0;
    experiments::LiveLine live(!o.quiet, most, o.batch);  // on a terminal: batches, img/s, ETA
    for (auto& batch : *loader) {
      if (batches == most) break;
      optimizer.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(model->forward(batch.data), batch.target);
      loss.backward();
      optimizer.step();
      layers.enforce(optimizer);  // + dsd: pruned weights and their optimizer state stay zero
      loss_sum += loss.item<double>(), ++batches;
      live.update(batches);
    }
    return loss_sum / static_cast<double>(batches);
  };
  const std::size_t batches_per_epoch = data.train.count / static_cast<std::size_t>(o.batch);
  cb.train_epoch = [&](const dsd::EpochContext&) { return train_batches(batches_per_epoch); };
  cb.train_steps = [&](const dsd::EpochContext& ctx) {
    DSD_REQUIRE(ctx.steps <= static_cast<std::int64_t>(batches_per_epoch), invalid_argument,
                "a unit of ", ctx.steps, " steps is longer than an epoch of ", batches_per_epoch,
                " batches");
    return train_batches(static_cast<std::size_t>(ctx.steps));
  };
  cb.evaluate = [&] { return accuracy(model, validation); };

  experiments::RunResult result{mode, {}, {}, 0.0, {}};
  auto epoch_start = std::chrono::steady_clock::now();
  cb.before_epoch = [&](const dsd::EpochContext&) {
    epoch_start = std::chrono::steady_clock::now();
  };
  cb.after_epoch = [&](const dsd::EpochContext& ctx, double loss, double val) {
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    result.rows.push_back(experiments::epoch_row(ctx, loss, val, accuracy(model, test), layers, secs));
  };
  if (!o.quiet) cb.progress = &std::cout;
  std::optional<dsd::io::RunRecorder> recorder;  // --report: last, it chains the hooks above
  if (experiments::records_wanted(o)) recorder.emplace().attach(cb, layers);
  std::optional<dsd::SensitivityTable> sensitivity;
  const dsd::Plan schedule = experiments::plan_for(o, mode, experiments::layer_names(layers),
                                                       batches_per_epoch);
  const auto run_with = [&](const auto& thresholds) {
    auto report = mode == "random-cut"
                      ? dsd::run(layers, schedule, thresholds, cb, dsd::RandomCut{.seed = o.seed})
                      : dsd::run(layers, schedule, thresholds, cb);
    if (recorder)
      result.record = experiments::make_record(*recorder, o, mode, schedule, thresholds, result,
                                               sensitivity);
    return report;
  };
  result.report = o.sensitivity_drop && mode != "dense"
                      ? run_with(dsd::SensitivitySparsity{
                            .max_drop = *o.sensitivity_drop,
                            .evaluate = cb.evaluate,
                            .on_table = [&](const dsd::SensitivityTable& t) { sensitivity = t; }})
                      : run_with(dsd::UniformSparsity{.sparsity = o.sparsity});
  result.test_accuracy = accuracy(model, test);
  if (result.record) result.record->results = {{"test accuracy", result.test_accuracy}};
  if (!write_baseline.empty()) save_baseline(write_baseline, o, model, optimizer);
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  experiments::Options o;
  o.epochs = {4, 4, 4};
  o.lr = 0.03;  // fashion_cnn's default (docs/results.md)
  CLI::App app{"Dense-Sparse-Dense training of a LeNet-5 CNN on Fashion-MNIST (libtorch)"};
  experiments::add_options(app, o);
  CLI11_PARSE(app, argc, argv);
  o.command_line = experiments::command_line(argc, argv);
  try {
    experiments::apply_recipe_optimizer(o);
    experiments::require_whole_run_for_report(o);
    DSD_REQUIRE(o.resume.empty() && o.checkpoint.empty() && o.stop_after_batches == 0,
                invalid_argument,
                "fashion_torch: --checkpoint, --resume and --stop-after-batches are the oneDNN "
                "trainers'; a libtorch trainer saves its module and optimizer with torch::save "
                "and the masks with dsd::io::save_checkpoint(path, layers)");
    DSD_REQUIRE(o.clip_norm == 0.0, invalid_argument,
                "fashion_torch: --clip-norm is the oneDNN trainers'; a libtorch trainer calls "
                "torch::nn::utils::clip_grad_norm_");
    if (o.threads > 0) torch::set_num_threads(o.threads);
    const experiments::Data data = experiments::load_data(o);
    std::cout << "train " << data.train.count << ", validation " << data.validation.count
              << ", test " << data.test.count << " images from " << o.data << "\n";
    if (!o.quiet) {
      LeNet5 probe;
      const auto layers = dsd::torch::wrap(probe, {.exclude = o.exclude});
      std::cout << "parameters:\n"
                << experiments::describe_parameters(
                       std::span<const dsd::torch::Layers<>::layer_type>(&layers[0], layers.size()),
                       layers.size());
    }
    std::vector<experiments::RunResult> runs;
    for (const auto& mode : experiments::modes_to_run(o)) {
      std::cout << "== " << mode << " ==\n";
      runs.push_back(train(o, mode, data));
      dsd::print_report(std::cout, runs.back().report);
    }
    experiments::print_results(o, runs);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
