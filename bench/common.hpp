#pragma once
// What every dsd_bench source shares: the thread counts to run, input data, and the
// bytes/items counters. See main.cpp for the binary's flags.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdint>
#include <dsd/dsd.hpp>
#include <vector>

namespace dsd_bench {

// One thread and all cores, unless --threads says otherwise.
inline std::vector<int> g_threads = [] {
  const int all = omp_get_num_procs();
  return all > 1 ? std::vector<int>{1, all} : std::vector<int>{1};
}();
inline bool g_long = false;  // --long: the VGG-16 selections too

inline std::vector<float> random_floats(std::size_t n, std::uint64_t seed, float scale = 1.0f) {
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

inline int set_threads(benchmark::State& state, int arg) {
  const int t = static_cast<int>(state.range(arg));
  omp_set_num_threads(t);
  state.counters["threads"] = t;
  return t;
}

inline void report(benchmark::State& state, std::size_t n, double bytes_per_item) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(n));
  state.SetBytesProcessed(static_cast<std::int64_t>(static_cast<double>(state.iterations()) *
                                                    bytes_per_item * static_cast<double>(n)));
}

// Registers `b` for every element count up to `max_n` and every thread count.
inline benchmark::internal::Benchmark* sized(benchmark::internal::Benchmark* b,
                                             std::int64_t max_n = 1 << 26) {
  for (std::int64_t n : {1 << 20, 1 << 22, 1 << 24, 1 << 26})
    if (n <= max_n)
      for (int t : g_threads) b->Args({n, t});
  return b->UseRealTime()->Unit(benchmark::kMillisecond);
}

// One per source file, called by main in this order.
void register_updates();
void register_selection();
void register_masks();
void register_sparse_products();

}  // namespace dsd_bench
