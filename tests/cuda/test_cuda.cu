// GPU backend tests. Without a usable device the device cases are skipped, the "no device" error
// is checked, and the binary exits 77 so ctest reports the test as skipped.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <dsd/backend/cuda/masked_update.cuh>
#include <dsd/backend/cuda/select.cuh>
#include <dsd/dsd.hpp>
#include <string>
#include <vector>

#include "../test_util.hpp"

namespace {
const bool has_device = dsd::cuda::device_count() > 0;

std::vector<std::uint64_t> words_of(const dsd::BitMask& m) {
  return {m.words().begin(), m.words().end()};
}
}  // namespace

TEST_CASE("GPU calls without a GPU fail with errc::no_device" * doctest::skip(has_device)) {
  try {
    dsd::cuda::require_device();
    FAIL("expected dsd::error");
  } catch (const dsd::error& e) {
    CHECK(e.code() == dsd::errc::no_device);
    CHECK(std::string(e.what()).find("dsd: no usable CUDA device") == 0);
  }
  CHECK_THROWS_AS(dsd::cuda::DeviceBuffer<float>(16), dsd::error);
}

TEST_CASE("device Keepmax-Cut equals the CPU mask, ties included" * doctest::skip(!has_device)) {
  for (std::size_t n : {std::size_t{1000}, std::size_t{1} << 20}) {
    auto w = dsd_test::uniform<float>(n, 3);
    for (std::size_t i = 0; i < n; i += 7) w[i] = 0.25f;  // many exact ties
    std::vector<float> cpu = w;
    dsd::Masked<std::vector<float>> layer(cpu, "fc");  // nvcc (EDG) cannot deduce it
    const std::size_t k = n * 3 / 5;
    const auto stats = dsd::prune_exactly(layer, k);
    dsd::cuda::DeviceBuffer<float> dw(w);
    dsd::cuda::DeviceBuffer<std::uint64_t> dm((n + 63) / 64);
    const float t = dsd::cuda::keepmax_mask(dw.data(), n, k, dm.data());
    CHECK(dm.download() == words_of(layer.mask()));
    CHECK(double(t) == stats.threshold);
  }
}

TEST_CASE("device fused updates equal the CPU optimizers" * doctest::skip(!has_device)) {
  const std::size_t n = 100003;
  auto w = dsd_test::uniform<float>(n, 5);
  const auto g = dsd_test::uniform<float>(n, 6);
  std::vector<float> cpu_m = w, cpu_a = w;
  dsd::Masked<std::vector<float>> lm(cpu_m, "m"), la(cpu_a, "a");
  dsd::prune(lm, 0.5, dsd::RandomCut{.seed = 1});
  la.set_mask(lm.mask());
  const auto words = words_of(lm.mask());
  dsd::cuda::DeviceBuffer<float> dwm(cpu_m), dwa(cpu_a), dg(g), dv(std::vector<float>(n, 0.0f)),
      dm1(std::vector<float>(n, 0.0f)), dm2(std::vector<float>(n, 0.0f));
  dsd::cuda::DeviceBuffer<std::uint64_t> dmask(words);
  for (int step = 1; step <= 3; ++step) {
    dsd::Nesterov{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3}.step(lm, g);
    dsd::cuda::momentum_step(dwm.data(), dg.data(), dv.data(), dmask.data(), n,
                             {.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3, .nesterov = true});
    dsd::AdamW{.lr = 0.01, .weight_decay = 0.1}.step(la, g);
    dsd::cuda::adam_step(dwa.data(), dg.data(), dm1.data(), dm2.data(), dmask.data(), n,
                         {.lr = 0.01, .weight_decay = 0.1, .decoupled = true, .step = step});
  }
  const auto gm = dwm.download(), ga = dwa.download();
  for (std::size_t i = 0; i < n; ++i) {
    REQUIRE(gm[i] == doctest::Approx(cpu_m[i]).epsilon(1e-5));
    REQUIRE(ga[i] == doctest::Approx(cpu_a[i]).epsilon(1e-4));
    if (!lm.mask().test(i)) REQUIRE((gm[i] == 0.0f && ga[i] == 0.0f));
  }
  std::vector<float> e = w;
  dsd::cuda::DeviceBuffer<float> de(e);
  dsd::cuda::enforce(de.data(), dmask.data(), n);
  const auto ge = de.download();
  for (std::size_t i = 0; i < n; ++i) REQUIRE(ge[i] == (lm.mask().test(i) ? w[i] : 0.0f));
}

int main(int argc, char** argv) {
  doctest::Context ctx(argc, argv);
  const int rc = ctx.run();
  if (ctx.shouldExit() || rc != 0) return rc;
  if (!has_device) {
    std::printf("no CUDA device: GPU test cases skipped\n");
    return 77;
  }
  return 0;
}
