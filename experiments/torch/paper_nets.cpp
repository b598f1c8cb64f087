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

#include "paper_nets.hpp"
#include "paper_rnns.hpp"

namespace {

using dsd::detail::format;
using Clock = std::chrono::steady_clock;

/// A network with what training it needs: its module, a synthetic batch, the loss of a batch,
/// and which of its parameters dsd wraps.
struct Trainable {
  std::shared_ptr<torch::nn::Module> module;
  std::function<std::pair<torch::Tensor, torch::Tensor>(int)> batch;  ///< (input, target) of seed
  std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)> loss;
  std::function<double(const torch::Tensor&, const torch::Tensor&)> accuracy;  ///< NaN: none
  dsd::torch::WrapOptions wrap{};
  std::string input;  ///< the input's shape, as printed
};

struct Flags {
  std::string net, recipe;
  int steps = 2;
  std::int64_t batch = 8, image = 224, frames = 64, caption = 16;
  int threads = 0;
  std::uint64_t seed = 1;
  double weight_decay = 1e-4;
};

Trainable make(const Flags& f) {
  const std::int64_t b = f.batch;
  Trainable t;
  if (f.net == "deepspeech1") {
    experiments::paper::DeepSpeech1 m;
    t.module = m.ptr();
    const std::int64_t frames = f.frames;
    t.input = format("%d frames x %d x (11 x 161)", static_cast<int>(frames), static_cast<int>(b));
    t.batch = [=](int seed) {
      torch::manual_seed(static_cast<std::uint64_t>(seed));
      return std::pair{torch::randn({frames, b, 11 * 161}), torch::randint(1, 29, {b, frames / 4}, torch::kLong)};
    };
    t.loss = [impl = m.ptr(), frames, b](const torch::Tensor& x, const torch::Tensor& y) {
      return torch::nn::functional::ctc_loss(impl->forward(x), y, torch::full({b}, frames, torch::kLong),
                                             torch::full({b}, y.size(1), torch::kLong));
    };
  } else if (f.net == "deepspeech2") {
    experiments::paper::DeepSpeech2 m;
    t.module = m.ptr();
    const std::int64_t frames = f.frames;
    t.input = format("%d x 1 x 161 bins x %d frames", static_cast<int>(b), static_cast<int>(frames));
    t.batch = [=](int seed) {
      torch::manual_seed(static_cast<std::uint64_t>(seed));
      return std::pair{torch::randn({b, 1, 161, frames}), torch::randint(1, 54, {b, frames / 8}, torch::kLong)};
    };
    t.loss = [impl = m.ptr(), b](const torch::Tensor& x, const torch::Tensor& y) {
      const torch::Tensor logp = impl->forward(x);
      return torch::nn::functional::ctc_loss(logp, y, torch::full({b}, logp.size(0), torch::kLong),
                                             torch::full({b}, y.size(1), torch::kLong));
    };
  } else if (f.net == "neuraltalk") {
    experiments::paper::NeuralTalk m;
    t.module = m.ptr();
    const std::int64_t words = f.caption, vocabulary = m->Ws.size(0);
    t.input = format("%d x 4096 image features, captions of %d words", static_cast<int>(b), static_cast<int>(words));
    // input: the features and the caption; target: the caption (the word after each input)
    t.batch = [=](int seed) {
      torch::manual_seed(static_cast<std::uint64_t>(seed));
      return std::pair{torch::randn({b, 4096}), torch::randint(0, vocabulary, {words, b}, torch::kLong)};
    };
    const auto logits = [impl = m.ptr()](const torch::Tensor& x, const torch::Tensor& y) { return impl->forward(x, y); };
    t.loss = [logits](const torch::Tensor& x, const torch::Tensor& y) {
      const torch::Tensor z = logits(x, y);
      return torch::nn::functional::cross_entropy(z.flatten(0, 1), y.flatten());
    };
    t.accuracy = [logits](const torch::Tensor& x, const torch::Tensor& y) {
      return logits(x, y).argmax(2).eq(y).to(torch::kDouble).mean().item<double>();
    };
    // Karpathy's matrices are not called weight*: every matrix (2-D), not be and bd
    t.wrap.select = [](const std::string&, const torch::Tensor& p) { return p.dim() >= 2; };
  } else {
    auto net = experiments::paper::make_torchvision(f.net);
    t.module = net.module;
    const std::int64_t s = f.image;
    t.input = format("%d x 3 x %d x %d", static_cast<int>(b), static_cast<int>(s), static_cast<int>(s));
    t.batch = [=](int seed) {
      torch::manual_seed(static_cast<std::uint64_t>(seed));
      return std::pair{torch::randn({b, 3, s, s}), torch::randint(0, 1000, {b}, torch::kLong)};
    };
    auto forward = net.forward;
    t.loss = net.loss;  // GoogLeNet's weighs in its auxiliary heads while training
    t.accuracy = [forward](const torch::Tensor& x, const torch::Tensor& y) {
      return forward(x).argmax(1).eq(y).to(torch::kDouble).mean().item<double>();
    };
  }
  return t;
}

/// The recipe's optimizer: Nesterov or plain momentum SGD (0.9), the trainer's weight decay.
std::unique_ptr<torch::optim::SGD> make_optimizer(const std::string& name, torch::nn::Module& m, double wd) {
  DSD_REQUIRE(name.empty() || name == "sgd" || name == "nesterov", invalid_argument, "the recipe's optimizer \"",
              name, "\" is not sgd or nesterov, the two the paper's recipes use");
  return std::make_unique<torch::optim::SGD>(
      m.parameters(), torch::optim::SGDOptions(0.01).momentum(0.9).nesterov(name == "nesterov").weight_decay(wd));
}

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
  app.add_option("--net", f.net, "alexnet | vgg16 | googlenet | googlenet_aux | resnet18 | resnet50 | resnet152 | "
                                 "squeezenet1_0 | neuraltalk | deepspeech1 | deepspeech2")
      ->required()
      ->check(CLI::IsMember({"alexnet", "vgg16", "googlenet", "googlenet_aux", "resnet18", "resnet50", "resnet152",
                             "squeezenet1_0", "neuraltalk", "deepspeech1", "deepspeech2"}));
  app.add_option("--recipe", f.recipe, "the recipe file (recipes/*.json)")->required();
  app.add_option("--steps", f.steps, "training steps of every phase")->check(CLI::PositiveNumber);
  app.add_option("--batch", f.batch, "batch size")->check(CLI::PositiveNumber);
  app.add_option("--image", f.image, "image side of the CNNs (224: ImageNet's; they pool adaptively)")
      ->check(CLI::Range(32, 1024));
  app.add_option("--frames", f.frames, "DeepSpeech: spectrogram frames per utterance")->check(CLI::Range(8, 4096));
  app.add_option("--caption", f.caption, "NeuralTalk: words per caption")->check(CLI::Range(2, 256));
  app.add_option("--threads", f.threads, "libtorch threads (0: libtorch's default)")->check(CLI::NonNegativeNumber);
  app.add_option("--seed", f.seed, "seed of the initialisation and the synthetic batches");
  app.add_option("--weight-decay", f.weight_decay, "L2 weight decay")->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    if (f.threads > 0) torch::set_num_threads(f.threads);
    torch::manual_seed(f.seed);
    const dsd::io::Recipe recipe = dsd::io::read_recipe(f.recipe);
    Trainable net = make(f);
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

    auto opt = make_optimizer(recipe.optimizer, *net.module, f.weight_decay);
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
