#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <dsd/threshold/kth_magnitude.hpp>
#include <dsd/threshold/prune_count.hpp>
#include <limits>
#include <vector>

#include "test_util.hpp"

namespace {
template <class S>
S reference_kth(std::vector<S> w, std::size_t k) {
  for (auto& x : w) x = std::abs(x);
  std::nth_element(w.begin(), w.begin() + static_cast<std::ptrdiff_t>(k - 1), w.end());
  return w[k - 1];
}

template <class S>
void check_all_ranks(const std::vector<S>& w, std::size_t step = 1) {
  for (std::size_t k = 1; k <= w.size(); k += step) {
    const S got = dsd::kth_magnitude(w, k);
    const S want = reference_kth(w, k);
    REQUIRE(std::bit_cast<dsd::detail::key_type<S>>(got) ==
            std::bit_cast<dsd::detail::key_type<S>>(want));
  }
  const S last = dsd::kth_magnitude(w, w.size());
  CHECK(last == reference_kth(w, w.size()));
}
}  // namespace

TEST_CASE_TEMPLATE("kth_magnitude equals nth_element on random data", S, float, double) {
  const auto w = dsd_test::uniform<S>(10007, 1);
  check_all_ranks(w, 97);
  const auto big = dsd_test::uniform<S>(300000, 2, 1e-3);  // large enough for the parallel path
  for (std::size_t k : {std::size_t{1}, std::size_t{150000}, std::size_t{299999}, big.size()})
    CHECK(dsd::kth_magnitude(big, k) == reference_kth(big, k));
}

TEST_CASE_TEMPLATE("kth_magnitude on sorted, reversed and duplicated data", S, float, double) {
  std::vector<S> sorted(4096);
  for (std::size_t i = 0; i < sorted.size(); ++i) sorted[i] = static_cast<S>(i) * S(0.25) - S(512);
  check_all_ranks(sorted, 7);
  std::reverse(sorted.begin(), sorted.end());
  check_all_ranks(sorted, 7);
  const std::vector<S> equal(1000, S(-0.5));
  check_all_ranks(equal, 1);
  std::vector<S> few(5000);  // three distinct magnitudes, mixed signs
  for (std::size_t i = 0; i < few.size(); ++i) few[i] = S((i % 3) + 1) * ((i % 2) ? S(-1) : S(1));
  check_all_ranks(few, 3);
}

TEST_CASE_TEMPLATE("kth_magnitude handles zeros, signed zeros, denormals and infinities", S, float,
                   double) {
  constexpr S denorm = std::numeric_limits<S>::denorm_min();
  const S inf = std::numeric_limits<S>::infinity();
  std::vector<S> w = {S(0),          S(-0.0),
                      denorm,        -denorm,
                      S(3) * denorm, std::numeric_limits<S>::min(),
                      S(1),          -inf,
                      S(2),          std::numeric_limits<S>::max(),
                      -S(1e-30)};
  check_all_ranks(w, 1);
  CHECK(dsd::kth_magnitude(w, 3) == denorm);
  CHECK(dsd::kth_magnitude(w, w.size()) == inf);
  // Values differing only in the lowest mantissa bit must be separated by the last pass.
  std::vector<S> close;
  for (int i = 0; i < 64; ++i) close.push_back(std::nextafter(S(1), S(2)) * S(i % 2 ? -1 : 1));
  close.push_back(S(1));
  CHECK(dsd::kth_magnitude(close, 1) == S(1));
  CHECK(dsd::kth_magnitude(close, 2) == std::nextafter(S(1), S(2)));
}

TEST_CASE("kth_magnitude across segments equals the concatenation, without copying it") {
  const auto a = dsd_test::uniform<float>(1000, 3), b = dsd_test::uniform<float>(7, 4, 10.0),
             c = dsd_test::uniform<float>(50000, 5, 0.01);
  std::vector<float> all(a);
  all.insert(all.end(), b.begin(), b.end());
  all.insert(all.end(), c.begin(), c.end());
  const std::span<const float> segs[] = {a, {}, b, c};
  for (std::size_t k = 1; k <= all.size(); k += 1234)
    CHECK(dsd::kth_magnitude<float>(std::span<const std::span<const float>>(segs), k) ==
          reference_kth(all, k));
}

TEST_CASE("kth_magnitude rejects empty input and out-of-range ranks") {
  const std::vector<float> empty, w = {1, 2, 3};
  CHECK_THROWS_WITH_AS((void)dsd::kth_magnitude(empty, 1), "dsd: kth_magnitude of an empty tensor",
                       dsd::error);
  CHECK_THROWS_WITH_AS((void)dsd::kth_magnitude(w, 0),
                       "dsd: kth_magnitude: k = 0 is outside [1, 3]", dsd::error);
  CHECK_THROWS_WITH_AS((void)dsd::kth_magnitude(w, 4),
                       "dsd: kth_magnitude: k = 4 is outside [1, 3]", dsd::error);
}

TEST_CASE("prune_count rounds half away from zero and validates the sparsity") {
  CHECK(dsd::prune_count(10, 0.0) == 0);
  CHECK(dsd::prune_count(10, 0.25) == 3);  // 2.5 -> 3
  CHECK(dsd::prune_count(10, 0.24) == 2);
  CHECK(dsd::prune_count(3, 0.5) == 2);  // 1.5 -> 2
  CHECK(dsd::prune_count(1000, 0.999) == 999);
  CHECK(dsd::prune_count(10, 0.99) == 10);  // a tiny layer can lose everything
  CHECK_THROWS_WITH_AS((void)dsd::prune_count(10, 1.0, "fc1"),
                       "dsd: sparsity 1 for layer \"fc1\" is outside [0, 1)", dsd::error);
  CHECK_THROWS_WITH_AS((void)dsd::prune_count(10, -0.1), "dsd: sparsity -0.1 is outside [0, 1)",
                       dsd::error);
  CHECK_THROWS_AS((void)dsd::prune_count(10, std::nan("")), dsd::error);
}
