// Building a mask from weights: Keepmax-Cut, Random-Cut and 2:4 at 50 %.
#include <vector>

#include "common.hpp"

namespace dsd_bench {
namespace {

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

}  // namespace

void register_masks() {
  sized(benchmark::RegisterBenchmark(
      "mask/keepmax", [](benchmark::State& s) { mask_build(s, dsd::KeepmaxCut{}, 0.5); }));
  sized(benchmark::RegisterBenchmark(
      "mask/random", [](benchmark::State& s) { mask_build(s, dsd::RandomCut{.seed = 1}, 0.5); }));
  sized(benchmark::RegisterBenchmark(
      "mask/nm_2_4", [](benchmark::State& s) { mask_build(s, dsd::NMCut<2, 4>{}, 0.5); }));
}

}  // namespace dsd_bench
