// The CUDA kernels' index arithmetic (dsd/detail/device_logic.hpp), checked on the CPU against
// naive references: the same functions run inside the kernels.
#include <doctest/doctest.h>

#include <bit>
#include <cstdint>
#include <dsd/detail/counter_rng.hpp>
#include <dsd/detail/device_logic.hpp>
#include <random>
#include <vector>

TEST_CASE("owning_segment finds the layer of a group, empty layers included") {
  // Groups per layer: 3, 0 (an empty or excluded layer), 1, 5.
  const std::vector<std::uint64_t> begin = {0, 3, 3, 4, 9};
  const int n = 4;
  const std::vector<int> want = {0, 0, 0, 2, 3, 3, 3, 3, 3};
  for (std::uint64_t g = 0; g < 9; ++g) CHECK(dsd::detail::owning_segment(begin.data(), n, g) == want[g]);
  const std::vector<std::uint64_t> one = {0, 1};
  CHECK(dsd::detail::owning_segment(one.data(), 1, 0) == 0);
}

TEST_CASE("clear_lowest_bits prunes the lowest-index ties first") {
  std::mt19937_64 gen(5);
  for (int trial = 0; trial < 2000; ++trial) {
    const std::uint64_t bits = gen() & gen();
    const std::uint64_t drop = gen() % 70;
    std::uint64_t ref = bits;
    std::uint64_t left = drop;
    for (int b = 0; b < 64 && left > 0; ++b)
      if ((ref >> b) & 1u) ref &= ~(std::uint64_t{1} << b), --left;
    REQUIRE(dsd::detail::clear_lowest_bits(bits, drop) == ref);
    REQUIRE(std::popcount(dsd::detail::clear_lowest_bits(bits, drop)) ==
            std::max(0, std::popcount(bits) - static_cast<int>(drop)));
  }
  CHECK(dsd::detail::ties_to_drop(10, 3) == 7);
  CHECK(dsd::detail::ties_to_drop(3, 10) == 0);
  CHECK(dsd::detail::ties_to_drop(5, 5) == 0);
}

TEST_CASE("count_bits counts a row of a bit-packed mask at any alignment") {
  std::mt19937_64 gen(9);
  std::vector<std::uint64_t> words(20);
  for (auto& w : words) w = gen();
  const auto test = [&](std::size_t i) { return (words[i / 64] >> (i % 64)) & 1u; };
  for (std::size_t begin : {0u, 1u, 63u, 64u, 65u, 100u, 640u})
    for (std::size_t len : {0u, 1u, 5u, 63u, 64u, 65u, 128u, 300u, 500u}) {
      if (begin + len > words.size() * 64) continue;
      std::size_t ref = 0;
      for (std::size_t i = begin; i < begin + len; ++i) ref += test(i);
      CAPTURE(begin);
      CAPTURE(len);
      CHECK(dsd::detail::count_bits(words.data(), begin, begin + len) == ref);
    }
}

TEST_CASE("Random-Cut's integer keys rank exactly as its double scores") {
  // The device ranks random_cut_key; the CPU ranks the double score key * 2^-53. Equal order and
  // equal ties mean equal masks.
  for (std::uint64_t i = 0; i < 5000; ++i) {
    const std::uint64_t a = dsd::detail::random_cut_key(3, 11, i), b = dsd::detail::random_cut_key(3, 11, i + 1);
    const double sa = static_cast<double>(a) * 0x1p-53, sb = static_cast<double>(b) * 0x1p-53;
    REQUIRE(a < (std::uint64_t{1} << 53));
    REQUIRE((a < b) == (sa < sb));
    REQUIRE((a == b) == (sa == sb));
  }
}
