// dsd_bench_paper: what DSD costs on the paper's networks at their real shapes (libtorch, CPU).
// For each network NET (experiments/torch/trainable.hpp: torchvision's CNNs at 224 x 224 x 3,
// NeuralTalk, DeepSpeech 1 and 2 at their paper_nets inputs), batch 8, in one run:
//
//   NET/step/plain       zero_grad, forward, backward, torch::optim::SGD step (momentum 0.9, weight
//                        decay 1e-4): what the user's loop costs without dsd
//   NET/step/enforce     the same after the recipe's prune, + layers.enforce(opt) (pruned weights and
//                        their momentum back to zero); counter dsd_share: enforce's time over the
//                        whole step's, timed within the same iterations
//   NET/step/dsd_fused   dsd::MomentumSgd steps the wrapped weights from their gradients (mask fused
//                        in), torch's SGD the rest (biases, normalisation)
//   NET/prune/recipe     the recipe's first prune of every wrapped layer (Keepmax-Cut per layer),
//                        from the dense weights; counters: mask_MiB (the masks dsd keeps),
//                        weights_MiB, peak_MiB (the most the prune holds on the heap at once,
//                        counted by this program's operator new: every allocation dsd makes)
//   NET/prune/global     GlobalSparsity at the same sparsity and exclusions, from the dense weights
//   NET/sensitivity      sensitivity_analysis' own work over 9 candidates (10 % ... 90 %) of every
//                        layer, the user's evaluation a no-op: items/s are candidates (layer x
//                        sparsity) pruned and restored per second
//
// Networks whose recipe the paper does not publish (AlexNet, ResNet-152) or whose recipe does not
// prune (SqueezeNet: it starts from pruned masks) are pruned uniformly at 50 %, and say so in
// their label. bench/torch_prune.py measures the same networks in torch.nn.utils.prune.
//
//   dsd_bench_paper [--threads=N] [--recipes=DIR] [google-benchmark flags]
// (default: all cores, ./recipes). Compare rows of one run only.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include <dsd/adapters/torch.hpp>
#include <dsd/dsd.hpp>
#include <dsd/io/recipe.hpp>

#include "../experiments/torch/trainable.hpp"

namespace {

using experiments::paper::Trainable;

std::string g_recipes = "recipes";

/// The recipe file of each network (the paper publishes none for AlexNet and ResNet-152).
const std::map<std::string, std::string> recipe_of{
    {"vgg16", "vgg16-iclr2017.json"},        {"googlenet", "googlenet-iclr2017.json"},
    {"googlenet_aux", "googlenet-iclr2017.json"}, {"resnet18", "resnet18-iclr2017.json"},
    {"resnet50", "resnet50-iclr2017.json"},  {"squeezenet1_0", "squeezenet-iclr2017.json"},
    {"neuraltalk", "neuraltalk-iclr2017.json"}, {"deepspeech1", "deepspeech1-iclr2017.json"},
    {"deepspeech2", "deepspeech2-iclr2017.json"}};

/// A network built and wrapped, with the prune its recipe does first.
struct Subject {
  Trainable net;
  dsd::torch::Layers<float> layers;
  dsd::UniformSparsity prune{.sparsity = 0.5};
  std::string label;  ///< which prune: the recipe's, or uniform 50 % where there is none
};

Subject subject(const std::string& name) {
  torch::manual_seed(1);
  Subject s{experiments::paper::make_trainable(name, {}), {}, {}, "uniform 0.5 (no published prune)"};
  s.layers = dsd::torch::wrap(*s.net.module, s.net.wrap);
  if (const auto file = recipe_of.find(name); file != recipe_of.end()) {
    std::vector<std::string> names;
    for (const auto& l : s.layers) names.push_back(l.name());
    const dsd::io::Recipe recipe = dsd::io::read_recipe(g_recipes + "/" + file->second);
    for (const auto& phase : recipe.plan(names, 1.0, 1).phases)  // lengths do not matter here
      if (const auto* u = std::get_if<dsd::UniformSparsity>(&phase.thresholds)) {
        s.prune = *u;
        s.label = recipe.name;
        break;
      }
  }
  return s;
}

/// What operator new holds now and its peak since reset: every allocation dsd's host code makes
/// (its headers use the standard containers only; libtorch's tensors do not come through here).
struct HeapCount {
  std::atomic<std::size_t> live{0}, peak{0};
  void add(std::size_t n) noexcept {
    const std::size_t now = live.fetch_add(n) + n;
    for (std::size_t p = peak.load(); now > p && !peak.compare_exchange_weak(p, now);) {
    }
  }
} g_heap;

double mib(std::size_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

std::size_t mask_bytes(const dsd::torch::Layers<float>& layers) {
  std::size_t b = 0;
  for (const auto& l : layers) b += l.mask().words().size() * sizeof(std::uint64_t);
  return b;
}

enum class Step { plain, enforce, dsd_fused };

void step(benchmark::State& state, const std::string& name, Step variant) {
  Subject s = subject(name);
  const auto options = torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(1e-4);
  std::vector<torch::Tensor> rest;  // what dsd does not wrap, stepped by torch in dsd_fused
  for (const auto& p : s.net.module->parameters()) {
    bool wrapped = false;
    for (std::size_t i = 0; i < s.layers.size(); ++i) wrapped = wrapped || s.layers.parameter(i).is_same(p);
    if (!wrapped) rest.push_back(p);
  }
  torch::optim::SGD all(s.net.module->parameters(), options), others(rest, options);
  if (variant != Step::plain) dsd::prune(s.layers, s.prune);
  const dsd::MomentumSgd fused{.lr = 0.01, .momentum = 0.9, .weight_decay = 1e-4};
  s.net.module->train();
  const auto [x, y] = s.net.batch(7);
  double dsd_seconds = 0.0, total_seconds = 0.0;
  const auto one = [&](bool timed) {
    const auto t0 = std::chrono::steady_clock::now();
    s.net.module->zero_grad();
    s.net.loss(x, y).backward();
    auto t1 = std::chrono::steady_clock::now();
    if (variant == Step::dsd_fused) {
      s.layers.step(fused);
      others.step();
    } else {
      all.step();
      t1 = std::chrono::steady_clock::now();
      if (variant == Step::enforce) s.layers.enforce(all);
    }
    const auto t2 = std::chrono::steady_clock::now();
    if (timed) {
      total_seconds += std::chrono::duration<double>(t2 - t0).count();
      dsd_seconds += std::chrono::duration<double>(t2 - t1).count();
    }
  };
  one(false);  // the first step allocates the momentum buffers
  for (auto _ : state) one(true);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * experiments::paper::InputShape{}.batch);
  if (variant == Step::enforce) state.counters["dsd_share"] = dsd_seconds / total_seconds;
  state.counters["threads"] = torch::get_num_threads();
  state.SetLabel(variant == Step::plain ? s.net.input : s.label);
}

enum class Prune { recipe, global };

void prune(benchmark::State& state, const std::string& name, Prune how) {
  Subject s = subject(name);
  std::vector<torch::Tensor> dense;
  for (std::size_t i = 0; i < s.layers.size(); ++i) dense.push_back(s.layers.parameter(i).detach().clone());
  const dsd::GlobalSparsity global{.sparsity = s.prune.sparsity, .exclude = s.prune.exclude};
  double peak = 0.0;
  for (auto _ : state) {
    state.PauseTiming();
    dsd::redense(s.layers);  // masks off first: redense enforces the old mask before removing it
    {
      torch::NoGradGuard no_grad;
      for (std::size_t i = 0; i < s.layers.size(); ++i) s.layers.parameter(i).copy_(dense[i]);
    }
    const std::size_t before = g_heap.live.load();
    g_heap.peak = before;
    state.ResumeTiming();
    if (how == Prune::recipe)
      dsd::prune(s.layers, s.prune);
    else
      dsd::prune(s.layers, global);
    state.PauseTiming();
    peak = std::max(peak, mib(g_heap.peak.load() - before));
    state.ResumeTiming();
  }
  std::size_t weights = 0;
  for (const auto& l : s.layers) weights += l.size();
  state.counters["weights_MiB"] = mib(weights * sizeof(float));
  state.counters["mask_MiB"] = mib(mask_bytes(s.layers));
  state.counters["peak_MiB"] = peak;
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * weights));
  state.SetLabel(how == Prune::recipe ? s.label : "GlobalSparsity " + dsd::detail::to_text(global.sparsity));
}

void sensitivity(benchmark::State& state, const std::string& name) {
  Subject s = subject(name);
  const std::vector<double> candidates{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
  std::size_t points = 0;
  for (auto _ : state) {
    const auto table = dsd::sensitivity_analysis(s.layers, candidates, [] { return 0.0; });
    points += table.points.size();
    benchmark::DoNotOptimize(table.points.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(points));
  state.counters["layers"] = static_cast<double>(s.layers.size());
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest;
  try {
    for (int i = 0; i < argc; ++i) {
      const std::string a = argv[i];
      if (a.rfind("--threads=", 0) == 0) {
        const std::string n = a.substr(10);
        DSD_REQUIRE(!n.empty() && n.size() < 4 && n.find_first_not_of("0123456789") == std::string::npos &&
                        std::stoi(n) > 0,
                    invalid_argument, "--threads=", n, ": not a positive thread count");
        torch::set_num_threads(std::stoi(n));
      } else if (a.rfind("--recipes=", 0) == 0) {
        g_recipes = a.substr(10);
      } else {
        rest.push_back(argv[i]);
      }
    }
    for (const auto& [net, file] : recipe_of) (void)dsd::io::read_recipe(g_recipes + "/" + file);  // before any row
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  for (const std::string& net : experiments::paper::trainable_names()) {
    const auto add = [&](const std::string& row, auto f) {
      benchmark::RegisterBenchmark((net + "/" + row).c_str(), f)->UseRealTime()->Unit(benchmark::kMillisecond);
    };
    add("step/plain", [net](benchmark::State& s) { step(s, net, Step::plain); });
    add("step/enforce", [net](benchmark::State& s) { step(s, net, Step::enforce); });
    add("step/dsd_fused", [net](benchmark::State& s) { step(s, net, Step::dsd_fused); });
    add("prune/recipe", [net](benchmark::State& s) { prune(s, net, Prune::recipe); });
    add("prune/global", [net](benchmark::State& s) { prune(s, net, Prune::global); });
    add("sensitivity", [net](benchmark::State& s) { sensitivity(s, net); });
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 1;
  try {
    benchmark::RunSpecifiedBenchmarks();
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  benchmark::Shutdown();
  return 0;
}

// The heap count: operator new and delete replaced for this program (malloc underneath). GCC
// reads the free() in a replaced operator delete as a mismatch with new; here it is the pair.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  g_heap.add(malloc_usable_size(p));
  return p;
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, std::align_val_t a) {
  const std::size_t align = std::max(static_cast<std::size_t>(a), sizeof(void*));
  void* p = nullptr;
  if (posix_memalign(&p, align, n == 0 ? 1 : n) != 0) throw std::bad_alloc();
  g_heap.add(malloc_usable_size(p));
  return p;
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept {
  if (p == nullptr) return;
  g_heap.live.fetch_sub(malloc_usable_size(p));
  std::free(p);
}
void operator delete[](void* p) noexcept { operator delete(p); }
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { operator delete(p); }
void operator delete(void* p, std::align_val_t) noexcept { operator delete(p); }
void operator delete[](void* p, std::align_val_t) noexcept { operator delete(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { operator delete(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { operator delete(p); }
