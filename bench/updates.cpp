// Fused masked optimizer updates against STREAM copy/triad (the memory-bound ceiling), and the
// unfused way (a plain step, then a mask pass). bytes_per_second counts bytes as STREAM does:
// each array read or written once, write-allocate traffic not counted; masks count as n/8
// (bitmask) or n (bytemask) bytes.
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "common.hpp"

namespace dsd_bench {
namespace {

// ---------------------------------------------------------------- STREAM references
void stream_copy(benchmark::State& state) {
  set_threads(state, 1);
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<float> a = random_floats(n, 1), b(n);
  for (auto _ : state) {
    dsd::detail::parallel_chunks(n, 1, [&](std::size_t lo, std::size_t hi) {
      std::memcpy(b.data() + lo, a.data() + lo, (hi - lo) * sizeof(float));
    });
    benchmark::DoNotOptimize(b.data());
    benchmark::ClobberMemory();
  }
  report(state, n, 2 * sizeof(float));
}

void stream_triad(benchmark::State& state) {
  set_threads(state, 1);
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<float> a(n), b = random_floats(n, 1), c = random_floats(n, 2);
  float* pa = a.data();
  const float* pb = b.data();
  const float* pc = c.data();
  for (auto _ : state) {
    dsd::detail::parallel_chunks(n, 1, [&](std::size_t lo, std::size_t hi) {
      DSD_PRAGMA_SIMD
      for (std::size_t i = lo; i < hi; ++i) pa[i] = pb[i] + 3.0f * pc[i];
    });
    benchmark::DoNotOptimize(pa);
    benchmark::ClobberMemory();
  }
  report(state, n, 3 * sizeof(float));
}

// ---------------------------------------------------------------- fused masked updates
template <class Mask>
double mask_bytes() {
  return std::is_same_v<Mask, dsd::BitMask> ? 1.0 / 8.0 : 1.0;
}

struct Layer {
  std::vector<float> w, g;
  explicit Layer(std::size_t n) : w(random_floats(n, 3)), g(random_floats(n, 4, 1e-3f)) {}
};

template <class Mask, class Opt>
void update(benchmark::State& state, Opt opt, double arrays) {
  set_threads(state, 1);
  const auto n = static_cast<std::size_t>(state.range(0));
  Layer data(n);
  dsd::Masked<std::vector<float>, Mask> layer(data.w, "bench");
  dsd::prune(layer, 0.5, dsd::RandomCut{.seed = 1});
  opt.step(layer, data.g);  // allocate optimizer state outside the timed loop
  for (auto _ : state) {
    opt.step(layer, data.g);
    benchmark::DoNotOptimize(data.w.data());
    benchmark::ClobberMemory();
  }
  report(state, n, arrays * sizeof(float) + mask_bytes<Mask>());
}

template <class Mask>
void update_enforce(benchmark::State& state) {
  set_threads(state, 1);
  const auto n = static_cast<std::size_t>(state.range(0));
  Layer data(n);
  dsd::Masked<std::vector<float>, Mask> layer(data.w, "bench");
  dsd::prune(layer, 0.5, dsd::RandomCut{.seed = 1});
  for (auto _ : state) {
    layer.enforce();
    benchmark::DoNotOptimize(data.w.data());
    benchmark::ClobberMemory();
  }
  report(state, n, 2 * sizeof(float) + mask_bytes<Mask>());
}

// The unfused way: a plain momentum step over every weight, then a separate mask pass.
void update_momentum_then_mask(benchmark::State& state) {
  set_threads(state, 1);
  const auto n = static_cast<std::size_t>(state.range(0));
  Layer data(n);
  std::vector<float> v(n, 0.0f);
  dsd::Masked layer(data.w, "bench");
  dsd::prune(layer, 0.5, dsd::RandomCut{.seed = 1});
  float* w = data.w.data();
  float* pv = v.data();
  const float* g = data.g.data();
  for (auto _ : state) {
    dsd::detail::parallel_chunks(n, 1, [&](std::size_t lo, std::size_t hi) {
      DSD_PRAGMA_SIMD
      for (std::size_t i = lo; i < hi; ++i) {
        pv[i] = 0.9f * pv[i] + g[i] + 1e-4f * w[i];
        w[i] -= 0.01f * pv[i];
      }
    });
    layer.enforce();
    dsd::detail::for_each_masked(layer.mask(),
                                 [=](std::size_t i, bool keep) { pv[i] = keep ? pv[i] : 0.0f; });
    benchmark::DoNotOptimize(w);
    benchmark::ClobberMemory();
  }
  report(state, n, 5 * sizeof(float) + mask_bytes<dsd::BitMask>());
}

}  // namespace

void register_updates() {
  sized(benchmark::RegisterBenchmark("stream/copy", stream_copy));
  sized(benchmark::RegisterBenchmark("stream/triad", stream_triad));
  const auto updates = []<class Mask>(const char* mask_name) {
    const std::string m = mask_name;
    sized(benchmark::RegisterBenchmark(("update/sgd/" + m).c_str(), [](benchmark::State& s) {
      update<Mask>(s, dsd::Sgd{.lr = 0.01, .weight_decay = 1e-4}, 3);
    }));
    sized(
        benchmark::RegisterBenchmark(("update/momentum_sgd/" + m).c_str(), [](benchmark::State& s) {
          update<Mask>(s, dsd::MomentumSgd{.lr = 0.01, .momentum = 0.9, .weight_decay = 1e-4}, 5);
        }));
    sized(benchmark::RegisterBenchmark(("update/nesterov/" + m).c_str(), [](benchmark::State& s) {
      update<Mask>(s, dsd::Nesterov{.lr = 0.01, .momentum = 0.9, .weight_decay = 1e-4}, 5);
    }));
    sized(benchmark::RegisterBenchmark(("update/adam/" + m).c_str(), [](benchmark::State& s) {
      update<Mask>(s, dsd::Adam{.weight_decay = 1e-4}, 7);
    }));
    sized(benchmark::RegisterBenchmark(("update/adamw/" + m).c_str(), [](benchmark::State& s) {
      update<Mask>(s, dsd::AdamW{}, 7);
    }));
    sized(benchmark::RegisterBenchmark(("update/enforce/" + m).c_str(), update_enforce<Mask>));
  };
  updates.template operator()<dsd::BitMask>("bitmask");
  updates.template operator()<dsd::ByteMask>("bytemask");
  sized(benchmark::RegisterBenchmark("update/momentum_sgd_then_mask", update_momentum_then_mask));
}

}  // namespace dsd_bench
