// dsd_bench: what DSD's kernels cost, each next to a reference measured in the same binary:
// STREAM copy/triad for the memory-bound updates, std::nth_element / std::sort for selection,
// oneDNN and Eigen dense GEMM for sparse products.
//
//   dsd_bench [--threads=1,2] [--long] [google-benchmark flags]   (default threads: 1 and all
//   cores)
//
// Arguments of every benchmark: element count (or shape index), then the OpenMP thread count.
// bytes_per_second counts bytes as STREAM does: each array read or written once, write-allocate
// traffic not counted; masks count as n/8 (bitmask) or n (bytemask) bytes.
#include <benchmark/benchmark.h>
#include <omp.h>
#include <dnnl.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <dsd/backend/cpu/csr.hpp>
#include <dsd/dsd.hpp>
#include <random>
#include <string>
#include <vector>

namespace {

// One thread and all cores, unless --threads says otherwise.
std::vector<int> g_threads = [] {
  const int all = omp_get_num_procs();
  return all > 1 ? std::vector<int>{1, all} : std::vector<int>{1};
}();
bool g_long = false;

std::vector<float> random_floats(std::size_t n, std::uint64_t seed, float scale = 1.0f) {
  std::vector<float> v(n);
  dsd::detail::parallel_chunks(n, 1, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i)
      v[i] =
          scale *
          static_cast<float>(
              static_cast<double>(dsd::detail::counter_random(seed, 0, i) >> 11) * 0x1p-53 * 2 - 1);
  });
  return v;
}

int set_threads(benchmark::State& state, int arg) {
  const int t = static_cast<int>(state.range(arg));
  omp_set_num_threads(t);
  state.counters["threads"] = t;
  return t;
}

void report(benchmark::State& state, std::size_t n, double bytes_per_item) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(n));
  state.SetBytesProcessed(static_cast<std::int64_t>(static_cast<double>(state.iterations()) *
                                                    bytes_per_item * static_cast<double>(n)));
}

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

// Pruning every VGG-16 layer at 50 %: select, mask build and enforce, per layer.
void prune_vgg16(benchmark::State& state) {
  set_threads(state, 0);
  Vgg vgg;
  const auto orig = vgg.storage;
  for (auto _ : state) {
    state.PauseTiming();
    vgg.storage = orig;
    state.ResumeTiming();
    for (auto& l : vgg.layers) dsd::prune(l, 0.5);
    benchmark::ClobberMemory();
  }
  report(state, vgg.total, 2 * sizeof(float));
}

// ---------------------------------------------------------------- mask building
template <class Policy>
void mask_build(benchmark::State& state, Policy policy, double sparsity) {
  set_threads(state, 1);
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto w = random_floats(n, 6);
  dsd::BitMask mask(n);
  const dsd::PruneInfo info{"bench", dsd::Shape{n / 1024, 1024}};
  const auto k = dsd::prune_count(n, sparsity);
  for (auto _ : state) {
    policy.build_mask(std::span<const float>(w), k, mask, info);
    benchmark::DoNotOptimize(mask.words().data());
  }
  report(state, n, sizeof(float) + 1.0 / 8.0);
}

// ---------------------------------------------------------------- sparse x dense products
struct Shape2 {
  const char* name;
  std::size_t rows, cols;
};
const Shape2 shapes[] = {{"lenet_fc1", 300, 784},
                         {"lenet_fc2", 100, 300},
                         {"vgg_fc7", 4096, 4096},
                         {"vgg_fc6", 4096, 25088}};

void spmm_csr(benchmark::State& state) {
  const Shape2 s = shapes[state.range(0)];
  const auto batch = static_cast<std::size_t>(state.range(1));
  const double sparsity = static_cast<double>(state.range(2)) / 100.0;
  set_threads(state, 3);
  auto w = random_floats(s.rows * s.cols, 7);
  dsd::Masked layer(dsd::raw_tensor<float>{w.data(), w.size(), {s.rows, s.cols}}, s.name);
  dsd::prune(layer, sparsity);
  const auto a = dsd::cpu::to_csr(layer);
  const auto x = random_floats(s.cols * batch, 8);
  std::vector<float> y(s.rows * batch);
  for (auto _ : state) {
    dsd::cpu::csr_matmul(a, x.data(), batch, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["sparsity"] = sparsity;
  state.counters["flops"] = benchmark::Counter(2.0 * double(a.nnz()) * double(batch),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

void spmm_dense_onednn(benchmark::State& state) {
  const Shape2 s = shapes[state.range(0)];
  const auto batch = static_cast<dnnl::memory::dim>(state.range(1));
  set_threads(state, 2);
  using tag = dnnl::memory::format_tag;
  const auto M = static_cast<dnnl::memory::dim>(s.rows), K = static_cast<dnnl::memory::dim>(s.cols);
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  auto w = random_floats(s.rows * s.cols, 7);
  auto x = random_floats(s.cols * static_cast<std::size_t>(batch), 8);
  std::vector<float> y(s.rows * static_cast<std::size_t>(batch));
  const dnnl::memory::desc a_md({M, K}, dnnl::memory::data_type::f32, tag::ab),
      b_md({K, batch}, dnnl::memory::data_type::f32, tag::ab),
      c_md({M, batch}, dnnl::memory::data_type::f32, tag::ab);
  dnnl::matmul mm(dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), eng));
  dnnl::memory am(a_md, eng, w.data()), bm(b_md, eng, x.data()), cm(c_md, eng, y.data());
  for (auto _ : state) {
    mm.execute(strm, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
    strm.wait();
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["flops"] = benchmark::Counter(2.0 * double(M * K * batch),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

void spmm_dense_eigen(benchmark::State& state) {
  const Shape2 s = shapes[state.range(0)];
  const auto batch = static_cast<Eigen::Index>(state.range(1));
  const int t = set_threads(state, 2);
  Eigen::setNbThreads(t);
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  auto w = random_floats(s.rows * s.cols, 7);
  auto x = random_floats(s.cols * static_cast<std::size_t>(batch), 8);
  std::vector<float> y(s.rows * static_cast<std::size_t>(batch));
  const Eigen::Map<const RowMajor> A(w.data(), Eigen::Index(s.rows), Eigen::Index(s.cols)),
      X(x.data(), Eigen::Index(s.cols), batch);
  Eigen::Map<RowMajor> Y(y.data(), Eigen::Index(s.rows), batch);
  for (auto _ : state) {
    Y.noalias() = A * X;
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["flops"] = benchmark::Counter(2.0 * double(s.rows * s.cols) * double(batch),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

// ---------------------------------------------------------------- registration
void register_all() {
  const std::vector<std::int64_t> sizes = {1 << 20, 1 << 22, 1 << 24, 1 << 26};
  const auto sized = [&](benchmark::internal::Benchmark* b, std::int64_t max_n = 1 << 26) {
    for (auto n : sizes)
      if (n <= max_n)
        for (int t : g_threads) b->Args({n, t});
    b->UseRealTime()->Unit(benchmark::kMillisecond);
  };
  sized(benchmark::RegisterBenchmark("stream/copy", stream_copy));
  sized(benchmark::RegisterBenchmark("stream/triad", stream_triad));
  const auto updates = [&]<class Mask>(const char* mask_name) {
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
  sized(benchmark::RegisterBenchmark("select/kth_magnitude", select_kth));
  sized(benchmark::RegisterBenchmark("select/std_nth_element", select_nth_element));
  sized(benchmark::RegisterBenchmark("select/std_sort", select_sort), 1 << 24);
  sized(benchmark::RegisterBenchmark(
      "mask/keepmax", [](benchmark::State& s) { mask_build(s, dsd::KeepmaxCut{}, 0.5); }));
  sized(benchmark::RegisterBenchmark(
      "mask/random", [](benchmark::State& s) { mask_build(s, dsd::RandomCut{.seed = 1}, 0.5); }));
  sized(benchmark::RegisterBenchmark(
      "mask/nm_2_4", [](benchmark::State& s) { mask_build(s, dsd::NMCut<2, 4>{}, 0.5); }));
  if (g_long) {
    for (int t : g_threads) {
      benchmark::RegisterBenchmark("select/global/vgg16", select_global)
          ->Arg(t)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark("prune/vgg16_per_layer", prune_vgg16)
          ->Arg(t)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  for (std::int64_t s = 0; s < 4; ++s)
    for (std::int64_t batch : {1, 64})
      for (int t : g_threads) {
        benchmark::RegisterBenchmark("spmm/dense_onednn", spmm_dense_onednn)
            ->Args({s, batch, t})
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark("spmm/dense_eigen", spmm_dense_eigen)
            ->Args({s, batch, t})
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
        for (std::int64_t sp : {50, 70, 89, 95, 99})
          benchmark::RegisterBenchmark("spmm/csr", spmm_csr)
              ->Args({s, batch, sp, t})
              ->UseRealTime()
              ->Unit(benchmark::kMicrosecond);
      }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--threads=", 0) == 0) {
      g_threads.clear();
      std::size_t pos = 10;
      while (pos < a.size()) {
        const std::size_t comma = a.find(',', pos);
        g_threads.push_back(std::stoi(a.substr(pos, comma - pos)));
        pos = comma == std::string::npos ? a.size() : comma + 1;
      }
    } else if (a == "--long") {
      g_long = true;
    } else {
      rest.push_back(argv[i]);
    }
  }
  int rest_argc = static_cast<int>(rest.size());
  register_all();
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
