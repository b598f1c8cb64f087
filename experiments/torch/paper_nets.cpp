// The DSD paper's networks at their real shapes, each run through its recipe file with dsd:
//   paper_nets --net vgg16 --recipe recipes/vgg16-iclr2017.json [--steps 2] [--batch 8]
// Every phase of the recipe (its order, kinds, rates, prunes, exclusions and optimizer) runs for
// --steps training steps of real libtorch forward and backward passes on synthetic inputs of the
// network's input shape (224 x 224 x 3 images; 11 x 161 spectrogram frames for DeepSpeech 1, a
// 161-bin spectrogram for DeepSpeech 2; 4096-d image features and captions for NeuralTalk). It
// prints what was pruned per phase and per layer (kept counts, exclusions, the rate) and the step
// times, with dsd's part (layers.enforce: pruned weights and their optimizer state back to zero)
// apart from the step without it. ImageNet, WSJ and Flickr8k are not here: the accuracies these
// runs print are of synthetic labels, a check that the loop runs, not a result. A user replaces
// `Batches` with their loader.
#include <torch/torch.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <dsd/adapters/torch.hpp>
#include <dsd/detail/text.hpp>
#include <dsd/dsd.hpp>
#include <dsd/io/recipe.hpp>

#include "trainable.hpp"

namespace {

using dsd::detail::format;
using Clock = std::chrono::steady_clock;

struct Flags {
  std::string net, recipe;
  int steps = 2;
  experiments::paper::InputShape shape{};
  int threads = 0;
  std::uint64_t seed = 1;
  double weight_decay = 1e-4;
};

/// Step times of one phase: the whole step, and within it dsd's enforce.
struct Timing {
  dsd::Phase phase = dsd::Phase::dense;
  int round = 1, steps = 0;
  double total = 0.0, dsd = 0.0;  // seconds
};

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  CLI::App app{"The DSD paper's networks at their real shapes, run through a recipe file with dsd"};
  app.add_option("--net", f.net, "which of the paper's networks: one of the names above")
      ->required()
      ->check(CLI::IsMember(experiments::paper::trainable_names()));
  app.add_option("--recipe", f.recipe, "the recipe file (recipes/*.json)")->required();
  app.add_option("--steps", f.steps, "training steps of every phase")->check(CLI::PositiveNumber);
  app.add_option("--batch", f.shape.batch, "batch size")->check(CLI::PositiveNumber);
  app.add_option("--image", f.shape.image,
                 "image side of the CNNs (224: ImageNet's; torchvision's pool adaptively, alexnet_caffe takes 199 to 230)")
      ->check(CLI::Range(32, 1024));
  app.add_option("--frames", f.shape.frames, "DeepSpeech: spectrogram frames per utterance")->check(CLI::Range(8, 4096));
  app.add_option("--caption", f.shape.caption, "NeuralTalk: words per caption")->check(CLI::Range(2, 256));
  app.add_option("--threads", f.threads, "libtorch threads (0: libtorch's default)")->check(CLI::NonNegativeNumber);
  app.add_option("--seed", f.seed, "seed of the initialisation and the synthetic batches");
  app.add_option("--weight-decay", f.weight_decay, "L2 weight decay")->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    if (f.threads > 0) torch::set_num_threads(f.threads);
    torch::manual_seed(f.seed);
    const dsd::io::Recipe recipe = dsd::io::read_recipe(f.recipe);
    experiments::paper::Trainable net = experiments::paper::make_trainable(f.net, f.shape);
    auto layers = dsd::torch::wrap(*net.module, net.wrap);
    std::vector<std::string> names;
    std::int64_t total = 0;
    for (const auto& p : net.module->parameters()) total += p.numel();
    std::size_t wrapped = 0;
    for (const auto& l : layers) names.push_back(l.name()), wrapped += l.size();
    std::cout << f.net << ": " << total << " parameters, " << layers.size() << " weight tensors wrapped ("
              << wrapped << " weights; biases and normalisation stay dense), input " << net.input << "\n";
    std::cout << "recipe " << recipe.name << " (" << recipe.source << "), optimizer "
              << (recipe.optimizer.empty() ? "sgd" : recipe.optimizer) << "\n";

    // The recipe's phases, each run for --steps steps (one unit): its rates, prunes, exclusions.
    dsd::Plan plan = recipe.plan(names, 1.0, f.steps);
    for (std::size_t i = 0; i < plan.phases.size(); ++i) {
      auto& p = plan.phases[i];
      std::cout << format("  phase %zu: %-8s round %d, %s in the recipe, lr %g%s\n", i, dsd::to_string(p.phase),
                          p.round,
                          (recipe.epochs[i] > 0 ? format("%g epochs", recipe.epochs[i])
                                                : format("%d steps", static_cast<int>(p.steps)))
                              .c_str(),
                          p.lr, p.prune_before ? ", pruned before it" : "");
      p.epochs = 1;
      p.steps = 0;
    }
    if (!recipe.exclude.empty()) {
      std::cout << "  never pruned:";
      for (const auto& e : recipe.exclude) std::cout << " " << e;
      std::cout << "\n";
    }

    auto opt = experiments::paper::make_optimizer(recipe.optimizer, *net.module, f.weight_decay);
    const auto [held_x, held_y] = net.batch(1 << 20);  // a fixed batch the loop evaluates
    std::vector<Timing> timings;
    dsd::Callbacks cb;
    cb.set_lr = dsd::torch::lr_setter(*opt);
    int batch_seed = 0;
    cb.train_epoch = [&](const dsd::EpochContext& ctx) {
      net.module->train();
      Timing t{ctx.phase, ctx.round, f.steps, 0.0, 0.0};
      double loss_sum = 0.0;
      for (int s = 0; s < f.steps; ++s) {
        const auto [x, y] = net.batch(++batch_seed);
        const auto t0 = Clock::now();
        opt->zero_grad();
        const torch::Tensor loss = net.loss(x, y);
        loss.backward();
        opt->step();
        const auto t1 = Clock::now();
        layers.enforce(*opt);  // dsd: pruned weights and their momentum back to exactly zero
        const auto t2 = Clock::now();
        t.total += std::chrono::duration<double>(t2 - t0).count();
        t.dsd += std::chrono::duration<double>(t2 - t1).count();
        loss_sum += loss.item<double>();
      }
      timings.push_back(t);
      return loss_sum / f.steps;
    };
    cb.evaluate = [&] {
      if (!net.accuracy) return 0.0;
      torch::NoGradGuard no_grad;
      net.module->eval();
      return net.accuracy(held_x, held_y);
    };
    cb.progress = &std::cout;
    // Every prune of a recipe names its own sparsity; the run's thresholds are never used.
    const dsd::Report report = dsd::run(layers, plan, dsd::UniformSparsity{}, cb);
    dsd::print_report(std::cout, report);
    std::cout << "step times (" << f.steps << " steps per phase; dsd = layers.enforce(optimizer)):\n"
              << format("  %-9s %5s %14s %16s %12s %8s\n", "phase", "round", "ms/step", "without dsd", "dsd ms",
                        "dsd %");
    for (const Timing& t : timings)
      std::cout << format("  %-9s %5d %14.1f %16.1f %12.2f %7.2f%%\n", dsd::to_string(t.phase), t.round,
                          1e3 * t.total / t.steps, 1e3 * (t.total - t.dsd) / t.steps, 1e3 * t.dsd / t.steps,
                          100.0 * t.dsd / t.total);
    std::cout << "final loss of the fixed batch: "
              << format("%.4f", [&] {
                   torch::NoGradGuard no_grad;
                   net.module->eval();
                   return net.loss(held_x, held_y).item<double>();
                 }())
              << "\n";
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
