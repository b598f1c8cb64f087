// Exact k-th magnitude selection (radix select) against std::nth_element and std::sort on a
// copy of |w|; with --long, the global threshold over VGG-16 and a per-layer prune of it.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common.hpp"
#include "dsd/io/histogram.hpp"

namespace dsd_bench {
namespace {

// ---------------------------------------------------------------- selection
void select_kth(benchmark::State& state) {
  set_threads(state, 1);
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto w = random_floats(n, 5);
  const std::size_t k = n / 2;
  for (auto _ : state) benchmark::DoNotOptimize(dsd::kth_magnitude(w, k));
  report(state, n, sizeof(float));
}

// The std references need a scratch copy of |w| (they reorder it); the copy is timed too.
template <class Algorithm>
void select_std(benchmark::State& state, Algorithm algorithm) {
  set_threads(state, 1);
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto w = random_floats(n, 5);
  std::vector<float> scratch(n);
  for (auto _ : state) {
    std::transform(w.begin(), w.end(), scratch.begin(), [](float x) { return std::abs(x); });
    algorithm(scratch);
    benchmark::DoNotOptimize(scratch[n / 2 - 1]);
  }
  report(state, n, sizeof(float));
}

void select_nth_element(benchmark::State& state) {
  select_std(state, [](std::vector<float>& v) {
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2 - 1), v.end());
  });
}

void select_sort(benchmark::State& state) {
  select_std(state, [](std::vector<float>& v) { std::sort(v.begin(), v.end()); });
}

// VGG-16's weight tensors (13 conv + 3 FC, 138.3 M weights in all).
const std::vector<std::size_t> vgg16 = {3 * 64 * 9,    64 * 64 * 9,   64 * 128 * 9,  128 * 128 * 9,
                                        128 * 256 * 9, 256 * 256 * 9, 256 * 256 * 9, 256 * 512 * 9,
                                        512 * 512 * 9, 512 * 512 * 9, 512 * 512 * 9, 512 * 512 * 9,
                                        512 * 512 * 9, 25088 * 4096,  4096 * 4096,   4096 * 1000};

struct Vgg {
  std::vector<std::vector<float>> storage;
  std::vector<dsd::Masked<std::vector<float>>> layers;
  std::size_t total = 0;
  Vgg() {
    storage.reserve(vgg16.size());
    for (std::size_t l = 0; l < vgg16.size(); ++l)
      storage.push_back(random_floats(vgg16[l], 10 + l, 1.0f / float(l + 1)));
    for (std::size_t l = 0; l < vgg16.size(); ++l)
      layers.emplace_back(storage[l], "layer" + std::to_string(l)), total += vgg16[l];
  }
};

void select_global(benchmark::State& state) {
  set_threads(state, 0);
  Vgg vgg;
  for (auto _ : state)
    benchmark::DoNotOptimize(dsd::GlobalSparsity{.sparsity = 0.5}.prune_counts(vgg.layers));
  report(state, vgg.total, sizeof(float));
}

// Times `prune(vgg)` on VGG-16's original weights each iteration (restored outside the timing).
template <class Prune>
void prune_fresh_vgg16(benchmark::State& state, Prune prune) {
  set_threads(state, 0);
  Vgg vgg;
  const auto orig = vgg.storage;
  for (auto _ : state) {
    state.PauseTiming();
    vgg.storage = orig;
    state.ResumeTiming();
    prune(vgg);
    benchmark::ClobberMemory();
  }
  report(state, vgg.total, 2 * sizeof(float));
}

// Pruning every VGG-16 layer at 50 %: select, mask build and enforce, per layer.
void prune_vgg16(benchmark::State& state) {
  prune_fresh_vgg16(state, [](Vgg& vgg) {
    for (auto& l : vgg.layers) dsd::prune(l, 0.5);
  });
}

// Pruning all VGG-16 layers together at 50 % (GlobalSparsity): one global cut, then each mask
// from it (no second select per layer), all or nothing.
void prune_vgg16_global(benchmark::State& state) {
  prune_fresh_vgg16(state, [](Vgg& vgg) {
    benchmark::DoNotOptimize(dsd::prune(vgg.layers, dsd::GlobalSparsity{.sparsity = 0.5}));
  });
}

// What the run recorder costs at a phase boundary: every VGG-16 layer's histogram (64 bins),
// over a given range (one pass) or over the range it finds (two), against the masked momentum
// step over the same layers below: the goal is at most one step's time (issue 23).
void histogram_vgg16(benchmark::State& state, bool find_range) {
  set_threads(state, 0);
  Vgg vgg;
  for (auto& l : vgg.layers) dsd::prune(l, 0.5);
  const dsd::io::HistogramOptions options{.bins = 64, .range = find_range ? 0.0 : 0.05};
  for (auto _ : state) benchmark::DoNotOptimize(dsd::io::weight_histograms(vgg.layers, options));
  report(state, vgg.total, sizeof(float) + 1.0 / 8.0);
}

void momentum_step_vgg16(benchmark::State& state) {
  set_threads(state, 0);
  Vgg vgg;
  std::vector<std::vector<float>> grads;
  for (std::size_t l = 0; l < vgg.layers.size(); ++l) {
    dsd::prune(vgg.layers[l], 0.5);
    grads.push_back(random_floats(vgg16[l], 100 + l, 1e-3f));
  }
  const dsd::MomentumSgd opt{.lr = 0.01, .momentum = 0.9, .weight_decay = 1e-4};
  for (std::size_t l = 0; l < vgg.layers.size(); ++l) opt.step(vgg.layers[l], grads[l]);
  for (auto _ : state) {
    for (std::size_t l = 0; l < vgg.layers.size(); ++l) opt.step(vgg.layers[l], grads[l]);
    benchmark::ClobberMemory();
  }
  report(state, vgg.total, 5 * sizeof(float) + 1.0 / 8.0);
}

}  // namespace

void register_selection() {
  sized(benchmark::RegisterBenchmark("select/kth_magnitude", select_kth));
  sized(benchmark::RegisterBenchmark("select/std_nth_element", select_nth_element));
  sized(benchmark::RegisterBenchmark("select/std_sort", select_sort), 1 << 24);
  if (!g_long) return;
  for (int t : g_threads) {
    const auto vgg16_bench = [t](const char* name, auto fn) {
      benchmark::RegisterBenchmark(name, fn)->Arg(t)->UseRealTime()->Unit(benchmark::kMillisecond);
    };
    vgg16_bench("select/global/vgg16", select_global);
    vgg16_bench("prune/vgg16_per_layer", prune_vgg16);
    vgg16_bench("prune/vgg16_global", prune_vgg16_global);
    vgg16_bench("histogram/vgg16", [](benchmark::State& s) { histogram_vgg16(s, false); });
    vgg16_bench("histogram/vgg16_find_range", [](benchmark::State& s) { histogram_vgg16(s, true); });
    vgg16_bench("update/momentum_sgd/vgg16", momentum_step_vgg16);
  }
}

}  // namespace dsd_bench
